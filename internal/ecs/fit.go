package ecs

import (
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

// Every document must fit the index template, whatever Teleport sends:
// Elasticsearch refuses the whole document (400) for one value it cannot
// index, and the event would leave the index. So the raw event is placed
// by the template alone, the same way in every process and after every
// restart (no memory of earlier events decides where a value goes):
//
//   - a value at a path the template types is checked against the type;
//     one that does not fit moves, unchanged, to teleport.misfits (a
//     flattened field, keyed by its path), and the event is tagged;
//   - a value at a path the template does not know (a field of a newer
//     Teleport) goes to teleport.unmapped (flattened, keyed by its path),
//     whatever its shape: an object in one event and a string in the next
//     (SCIM's PATCH "value" differs by identity provider) never meet one
//     dynamic mapping, and no event can add fields to the index (its
//     total-field limit) or objects beyond its depth limit;
//   - Teleport's dotted keys ("addr.remote") are expanded where the
//     template maps the expanded path, and a key Elasticsearch cannot take
//     as a field name ("", " ", ".x", "x..y", "x.") or a dotted key that
//     would overwrite or be overwritten by another key ("app" beside
//     "app.kubernetes.io/name" where an object is mapped) goes to
//     teleport.unmapped under its full path, and the event is tagged: no
//     value is dropped or overwritten;
//   - inside a flattened field any key is a name (labels keep their
//     dots), but no object may be deeper than the field's depth limit and
//     no key may hold "\0": a deeper object is kept as its JSON text, and
//     the event is tagged;
//   - a number that JSON cannot carry (NaN, ±Inf) is kept as its name.

// MisfitsField is the flattened field misfits move to.
const MisfitsField = "misfits"

// UnmappedField is the flattened field that holds raw values at paths the
// template does not map, keyed by their path.
const UnmappedField = "unmapped"

// LongValuesField holds, as "path=value", strings too long for a
// flattened field (a match_only_text field takes any length).
const LongValuesField = "long_values"

// TagMisfit marks an event with a field moved to teleport.misfits.
const TagMisfit = "teleport_field_misfit"

// TagMoved marks an event with a key Elasticsearch cannot take where it
// was (an invalid or colliding name) moved to teleport.unmapped, or an
// object too deep for a flattened field kept as its JSON text.
const TagMoved = "teleport_field_moved"

// flattenedDepthLimit is Elasticsearch's default depth_limit of a flattened
// field (FlattenedFieldMapper): an object may sit at most this many keys
// below the field, counting the object itself.
const flattenedDepthLimit = 20

// fitter places one raw event's values.
type fitter struct {
	misfits  mapstr.M
	unmapped mapstr.M
	// long are strings too long for a flattened field, as "path=value".
	long   []string
	moved  int
	misfit int
}

// fitRaw places the raw event's values (in place) and returns what moved
// out of it.
func fitRaw(raw mapstr.M) *fitter {
	f := &fitter{misfits: mapstr.M{}, unmapped: mapstr.M{}}
	f.object(raw, "")
	return f
}

// object places the fields of an object the template maps at prefix (""
// for the raw event itself).
func (f *fitter) object(obj mapstr.M, prefix string) {
	var plain, dotted []string
	for k := range obj {
		if strings.IndexByte(k, '.') >= 0 {
			dotted = append(dotted, k)
		} else {
			plain = append(plain, k)
		}
	}
	// Plain keys first, then dotted ones in order: which of two colliding
	// keys stays does not depend on the order Teleport wrote them in.
	slices.Sort(plain)
	slices.Sort(dotted)
	for _, k := range plain {
		v := obj[k]
		path := join(prefix, k)
		if strings.TrimSpace(k) == "" {
			delete(obj, k)
			f.move(path, v)
			continue
		}
		f.place(obj, k, path, v)
	}
	for _, k := range dotted {
		v := obj[k]
		delete(obj, k)
		path := join(prefix, k)
		if !f.expand(obj, prefix, k, v) {
			f.move(path, v)
		}
	}
}

// expand puts the value of a dotted key at its expanded path when the
// template maps that path and nothing else is there; it reports false
// when it cannot.
func (f *fitter) expand(obj mapstr.M, prefix, key string, v any) bool {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return false // "", " ", ".x", "x..y", "x."
		}
	}
	path := join(prefix, key)
	if _, known := rawFieldTypes[path]; !known && !isGroup(path) {
		f.keepFlat(f.unmapped, UnmappedField, path, v)
		return true
	}
	cur, p := obj, prefix
	for _, part := range parts[:len(parts)-1] {
		p = join(p, part)
		if !isGroup(p) {
			return false
		}
		switch next := cur[part].(type) {
		case nil:
			m := mapstr.M{}
			cur[part] = m
			cur = m
		case mapstr.M:
			cur = next
		default:
			return false // a value is there: the dotted key would overwrite it
		}
	}
	last := parts[len(parts)-1]
	if existing, ok := cur[last]; ok {
		em, eIsObject := existing.(mapstr.M)
		vm, vIsObject := v.(mapstr.M)
		if !eIsObject || !vIsObject || !isGroup(path) {
			return false
		}
		// Both are objects: the dotted key's fields join the others;
		// one that is there already is moved, not overwritten.
		added := mapstr.M{}
		for k, x := range vm {
			if _, clash := em[k]; clash {
				f.move(join(path, k), x)
				continue
			}
			added[k] = x
		}
		f.object(added, path)
		for k, x := range added {
			em[k] = x
		}
		return true
	}
	cur[last] = v
	f.place(cur, last, path, v)
	return true
}

// place checks one field of a mapped object against the template.
func (f *fitter) place(obj mapstr.M, k, path string, v any) {
	typ, known := rawFieldTypes[path]
	switch {
	case known && typ == "flattened":
		if _, ok := v.(mapstr.M); !ok {
			f.misfitOf(obj, k, path, v)
			return
		}
		if safe := f.flatSafe(v, 0, path); safe != nil {
			obj[k] = safe
		} else {
			delete(obj, k)
		}
	case known:
		if n, ok := v.(float64); ok && (math.IsNaN(n) || math.IsInf(n, 0)) {
			f.misfitOf(obj, k, path, v)
			return
		}
		if !fitsType(typ, v) {
			f.misfitOf(obj, k, path, v)
		}
	case isGroup(path):
		// Mapped as an object with known children: a value, or a list
		// holding values, does not fit.
		if !eachObject(v, func(m mapstr.M) { f.object(m, path) }) {
			f.misfitOf(obj, k, path, v)
		}
	default:
		delete(obj, k)
		f.keepFlat(f.unmapped, UnmappedField, path, v)
	}
}

func (f *fitter) misfitOf(obj mapstr.M, k, path string, v any) {
	delete(obj, k)
	f.keepFlat(f.misfits, MisfitsField, path, v)
	f.misfit++
}

// move keeps a value whose key Elasticsearch cannot take where it was.
func (f *fitter) move(path string, v any) {
	f.keepFlat(f.unmapped, UnmappedField, path, v)
	f.moved++
}

// keepFlat keeps v under path in the flattened field m (named field).
func (f *fitter) keepFlat(m mapstr.M, field, path string, v any) {
	if safe := f.flatSafe(v, 1, field+"."+path); safe != nil {
		keep(m, path, safe)
	}
}

// keep sets m[path] to v, or adds v to what is there already (two raw
// keys can name one path: "a.b" beside "a": {"b": ...}).
func keep(m mapstr.M, path string, v any) {
	prev, ok := m[path]
	if !ok {
		m[path] = v
		return
	}
	if l, isList := prev.([]any); isList {
		m[path] = append(l, v)
		return
	}
	m[path] = []any{prev, v}
}

// maxFlatValue is the longest string a flattened field keeps (bytes):
// Elasticsearch refuses a document whose flattened key and value together
// pass Lucene's term limit of 32766 bytes (FlattenedFieldParser), and
// flattened fields have no ignore_above in libbeat's templates.
const maxFlatValue = 8191

// flatSafe makes a value fit a flattened field at level keys below the
// field (path is where it is): objects no deeper than the depth limit (a
// deeper one is kept as its JSON text), no key holding "\0", no string
// longer than maxFlatValue (moved to teleport.long_values), numbers JSON
// can carry.
func (f *fitter) flatSafe(v any, level int, path string) any {
	switch x := v.(type) {
	case mapstr.M:
		if level+1 > flattenedDepthLimit {
			f.moved++
			return f.flatString(jsonText(x), path)
		}
		for k, e := range x {
			safe := f.flatSafe(e, level+1, path+"."+k)
			if strings.IndexByte(k, 0) >= 0 {
				delete(x, k)
				k = strings.ReplaceAll(k, "\x00", "\uFFFD")
				f.moved++
			}
			if safe == nil {
				delete(x, k)
				continue
			}
			x[k] = safe
		}
		return x
	case []any:
		out := x[:0]
		for _, e := range x {
			if safe := f.flatSafe(e, level, path); safe != nil {
				out = append(out, safe)
			}
		}
		if len(out) == 0 && len(x) > 0 {
			return nil
		}
		return out
	case string:
		return f.flatString(x, path)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	return v
}

// flatString keeps a string in a flattened field, or, when too long for
// one, in teleport.long_values as "path=value" (nil is returned).
func (f *fitter) flatString(s, path string) any {
	if len(s) <= maxFlatValue {
		return s
	}
	f.long = append(f.long, path+"="+s)
	f.moved++
	return nil
}

// jsonText is an object's JSON, for one too deep to be a flattened value.
func jsonText(m mapstr.M) string {
	b, err := json.Marshal(sanitizeNumbers(m))
	if err != nil {
		return m.String()
	}
	return string(b)
}

// sanitizeNumbers replaces NaN and ±Inf, which JSON cannot carry.
func sanitizeNumbers(v any) any {
	switch x := v.(type) {
	case mapstr.M:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = sanitizeNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sanitizeNumbers(e)
		}
		return out
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	return v
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// isGroup reports whether path is an object in the template (a prefix of
// known fields).
func isGroup(path string) bool {
	_, ok := rawGroups[path]
	return ok
}

// rawGroups are the object paths of the raw fields.
var rawGroups = func() map[string]struct{} {
	g := map[string]struct{}{}
	for p := range rawFieldTypes {
		for i := strings.IndexByte(p, '.'); i > 0; {
			g[p[:i]] = struct{}{}
			j := strings.IndexByte(p[i+1:], '.')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return g
}()

// eachObject calls fn on v when it is an object, or on each element of a
// list of objects, and reports false when v is not that.
func eachObject(v any, fn func(mapstr.M)) bool {
	switch x := v.(type) {
	case mapstr.M:
		fn(x)
		return true
	case []any:
		if !allObjects(x) {
			return false
		}
		for _, e := range x {
			fn(e.(mapstr.M))
		}
		return true
	}
	return false
}

func allObjects(l []any) bool {
	for _, e := range l {
		if _, ok := e.(mapstr.M); !ok {
			return false
		}
	}
	return true
}

// fitsType reports whether Elasticsearch can index v (or every element of
// the list v) into a field of the mapping type typ.
func fitsType(typ string, v any) bool {
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if _, nested := e.([]any); nested || !fitsType(typ, e) {
				return false
			}
		}
		return true
	}
	if l, ok := v.([]string); ok {
		for _, e := range l {
			if !fitsType(typ, e) {
				return false
			}
		}
		return true
	}
	switch typ {
	case "flattened", "object", "nested":
		_, ok := v.(mapstr.M)
		return ok
	}
	if _, ok := v.(mapstr.M); ok {
		return false
	}
	switch typ {
	case "keyword", "text", "match_only_text", "wildcard", "constant_keyword":
		return true
	case "long", "integer", "short", "byte":
		switch n := v.(type) {
		case int64:
			return inRange(typ, float64(n))
		case float64:
			return n == math.Trunc(n) && inRange(typ, n)
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			return err == nil && inRange(typ, float64(i))
		}
		return false
	case "double", "float", "scaled_float", "half_float":
		switch n := v.(type) {
		case int64:
			return true
		case float64:
			return !math.IsInf(n, 0) && !math.IsNaN(n)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
		}
		return false
	case "boolean":
		switch b := v.(type) {
		case bool:
			return true
		case string:
			return b == "true" || b == "false" || b == ""
		}
		return false
	case "date", "date_nanos":
		switch d := v.(type) {
		case int64:
			return true // epoch milliseconds
		case float64:
			// Not integral, or too large to be an int64: libbeat's
			// encoder writes it with an exponent ("1e+30"), which
			// epoch_millis does not read.
			return false
		case string:
			_, err := time.Parse(time.RFC3339Nano, d)
			return err == nil
		}
		return false
	case "ip":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := netip.ParseAddr(s)
		return err == nil
	}
	return true
}

// inRange reports whether n fits the integer type.
func inRange(typ string, n float64) bool {
	switch typ {
	case "integer":
		return n >= math.MinInt32 && n <= math.MaxInt32
	case "short":
		return n >= math.MinInt16 && n <= math.MaxInt16
	case "byte":
		return n >= math.MinInt8 && n <= math.MaxInt8
	}
	return n >= -(1<<63) && n < 1<<63
}
