package ecs

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

// Every document must fit the index template, whatever Teleport sends: a
// value Elasticsearch cannot index into its field's mapped type makes it
// refuse the whole document (400), and the event would leave the index.
// Newer Teleport versions do send such values (objects in "message" and
// "payload" of recent types), and some events carry times that are not
// RFC 3339. So the mapper checks every raw value against the type the
// generated template gives its path, and moves each misfit, unchanged, to
// the catch-all flattened field teleport.misfits (keyed by its path), and
// tags the event. Unknown paths (fields of newer Teleport versions) are
// indexed by the template's dynamic keyword mapping; for them, the shape
// seen first (object or value) is kept, and a later value of the other
// shape is a misfit too (Elasticsearch would refuse to change the field's
// mapping).

// MisfitsField is the flattened field misfits move to.
const MisfitsField = "misfits"

// TagMisfit marks an event with a field moved to teleport.misfits.
const TagMisfit = "teleport_field_misfit"

// maxUnknownShapes bounds the unknown paths whose shape is remembered.
const maxUnknownShapes = 10000

// shapes remembers the shape (object or value) first seen at each unknown
// path. The audit mapper runs on one goroutine, the session mapper on
// several.
type shapes struct {
	mu     sync.Mutex
	object map[string]bool
}

func (s *shapes) check(path string, isObject bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if was, ok := s.object[path]; ok {
		return was == isObject
	}
	if s.object == nil {
		s.object = map[string]bool{}
	}
	if len(s.object) < maxUnknownShapes {
		s.object[path] = isObject
	}
	return true
}

// fit walks the raw document and moves what does not fit to misfits,
// returning how many values moved.
func fit(raw mapstr.M, prefix string, misfits mapstr.M, seen *shapes) int {
	moved := 0
	for k, v := range raw {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		typ, known := rawFieldTypes[path]
		group := !known && isGroup(path)
		switch {
		case known:
			if !fitsType(typ, v) {
				misfits[path] = v
				delete(raw, k)
				moved++
			}
		case group:
			// Mapped as an object with known children: a value, or a
			// list holding values, does not fit.
			if !eachObject(v, func(m mapstr.M) { moved += fit(m, path, misfits, seen) }) {
				misfits[path] = v
				delete(raw, k)
				moved++
			}
		default:
			isObject := false
			switch x := v.(type) {
			case mapstr.M:
				isObject = true
			case []any:
				isObject = len(x) > 0 && allObjects(x)
				if !isObject && anyObject(x) {
					// A list mixing objects and values fits no mapping.
					misfits[path] = v
					delete(raw, k)
					moved++
					continue
				}
			}
			if !seen.check(path, isObject) {
				misfits[path] = v
				delete(raw, k)
				moved++
				continue
			}
			if isObject {
				eachObject(v, func(m mapstr.M) { moved += fit(m, path, misfits, seen) })
			}
		}
	}
	return moved
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

func anyObject(l []any) bool {
	for _, e := range l {
		if _, ok := e.(mapstr.M); ok {
			return true
		}
	}
	return false
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
	case "flattened":
		_, ok := v.(mapstr.M)
		return ok
	case "object", "nested":
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
		case int64, float64:
			return true // epoch milliseconds
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
