package ecs

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/template"
	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/mapstr"
	"github.com/elastic/elastic-agent-libs/version"

	"github.com/gravitational/teleport/api/types/events"

	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

// mappingIndex is the index template libbeat builds from fields.yml, as
// `teleportbeat setup` installs it.
type mappingIndex struct {
	properties map[string]any
}

func loadMapping(t *testing.T) mappingIndex {
	t.Helper()
	cfg := template.TemplateConfig{Enabled: true}
	tmpl, err := template.New(false, "0.1.0", "teleportbeat", false, *version.MustNew("9.3.0"), cfg, false, logptest.NewTestingLogger(t, ""))
	require.NoError(t, err)
	body, err := tmpl.LoadFile("../../fields.yml")
	require.NoError(t, err)
	b, err := json.Marshal(body)
	require.NoError(t, err)
	var m struct {
		Template struct {
			Mappings struct {
				Properties map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	require.NoError(t, json.Unmarshal(b, &m))
	require.NotEmpty(t, m.Template.Mappings.Properties)
	return mappingIndex{properties: m.Template.Mappings.Properties}
}

// check reports every field of doc that is not defined by the mapping or
// whose value does not fit its type.
func (mi mappingIndex) check(doc map[string]any) []string {
	var errs []string
	var walk func(path string, v any, props map[string]any)
	walk = func(path string, v any, props map[string]any) {
		obj, ok := v.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: %T where an object is mapped", path, v))
			return
		}
		for k, val := range obj {
			p := k
			if path != "" {
				p = path + "." + k
			}
			def, ok := props[k].(map[string]any)
			if !ok {
				if _, wildcard := props["*"]; wildcard {
					// Covered by the keyword dynamic templates of the
					// "*" field (fields of newer Teleport versions).
					continue
				}
				errs = append(errs, fmt.Sprintf("%s: not defined in fields.yml (value %v)", p, short(val)))
				continue
			}
			typ, _ := def["type"].(string)
			if sub, ok := def["properties"].(map[string]any); ok && (typ == "" || typ == "object") {
				for _, elem := range asList(val) {
					walk(p, elem, sub)
				}
				continue
			}
			for _, elem := range asList(val) {
				if err := fits(typ, elem); err != "" {
					errs = append(errs, fmt.Sprintf("%s (%s): %s", p, typ, err))
				}
			}
		}
	}
	walk("", doc, mi.properties)
	sort.Strings(errs)
	return errs
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// fits says why a JSON value cannot be indexed into a field of the type,
// or "" when it can.
func fits(typ string, v any) string {
	switch typ {
	case "flattened":
		if _, ok := v.(map[string]any); !ok {
			return fmt.Sprintf("%T where flattened wants an object", v)
		}
		return ""
	}
	if _, ok := v.(map[string]any); ok {
		return "an object where a value is mapped"
	}
	switch typ {
	case "keyword", "text", "match_only_text", "wildcard", "constant_keyword":
		return ""
	case "long", "integer", "short", "byte":
		switch n := v.(type) {
		case float64:
			if n != math.Trunc(n) {
				return fmt.Sprintf("%v is not an integer", n)
			}
			return ""
		case string:
			if _, err := strconv.ParseInt(n, 10, 64); err != nil {
				return fmt.Sprintf("%q is not an integer", n)
			}
			return ""
		}
		return fmt.Sprintf("%T is not a number", v)
	case "double", "float", "scaled_float", "half_float":
		switch n := v.(type) {
		case float64:
			return ""
		case string:
			if _, err := strconv.ParseFloat(n, 64); err != nil {
				return fmt.Sprintf("%q is not a number", n)
			}
			return ""
		}
		return fmt.Sprintf("%T is not a number", v)
	case "boolean":
		switch b := v.(type) {
		case bool:
			return ""
		case string:
			if b == "true" || b == "false" || b == "" {
				return ""
			}
		}
		return fmt.Sprintf("%v is not a boolean", v)
	case "date", "date_nanos":
		switch d := v.(type) {
		case float64:
			return "" // epoch milliseconds
		case string:
			if _, err := time.Parse(time.RFC3339Nano, d); err != nil {
				return fmt.Sprintf("%q is not a date", d)
			}
			return ""
		}
		return fmt.Sprintf("%T is not a date", v)
	case "ip":
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("%T is not an IP", v)
		}
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Sprintf("%q is not an IP", s)
		}
		return ""
	case "geo_point", "object", "nested", "alias":
		return ""
	}
	return "unknown mapping type " + typ
}

// document maps one event and returns what libbeat would send: the event
// fields and @timestamp, as JSON.
func document(t *testing.T, m *Mapper, e *teleporttest.Event) map[string]any {
	t.Helper()
	out := m.Map(decoded(t, e), time.Now())
	fields := out.Fields.Clone()
	fields["@timestamp"] = out.Timestamp.UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

// TestDocumentsFitTheTemplate: every
// sample event and every generated event type, mapped, is checked against
// the index template: every field path is defined and every value fits
// its type.
func TestDocumentsFitTheTemplate(t *testing.T) {
	mi := loadMapping(t)
	evs, err := teleporttest.CorpusEvents()
	require.NoError(t, err)
	g := teleporttest.NewGenerator(42)
	evs = append(evs, g.Events(2000, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Second)...)
	_, rec, up := g.Session(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 40)
	evs = append(append(evs, rec...), up)

	types := map[string]bool{}
	for _, m := range []*Mapper{NewAuditMapper(), NewSessionMapper()} {
		for _, e := range evs {
			types[e.Type] = true
			errs := mi.check(document(t, m, e))
			require.Empty(t, errs, "event %s (%s) as %s", e.ID, e.Type, m.dataset)
		}
	}
	require.GreaterOrEqual(t, len(types), 150)
}

// TestEveryAPIEventStructFitsTheTemplate fills every field of every event
// struct of the pinned teleport/api, encodes it as Teleport does (JSON
// field names) and checks the mapped document against the template.
func TestEveryAPIEventStructFitsTheTemplate(t *testing.T) {
	mi := loadMapping(t)
	m := NewAuditMapper()
	var o events.OneOf
	n := 0
	for _, w := range o.XXX_OneofWrappers() {
		typ := reflect.TypeOf(w).Elem().Field(0).Type.Elem()
		v := reflect.New(typ)
		fill(v.Elem(), 0)
		b, err := json.Marshal(v.Interface())
		require.NoError(t, err, typ.Name())
		var fields map[string]any
		require.NoError(t, json.Unmarshal(b, &fields), typ.Name())
		fields["event"] = typeNameFor(typ.Name())
		fields["time"] = "2025-01-01T00:00:00Z"
		e, err := teleporttest.NewEvent(fields)
		require.NoError(t, err, typ.Name())
		errs := mi.check(document(t, m, e))
		require.Empty(t, errs, "event struct %s", typ.Name())
		n++
	}
	require.Greater(t, n, 190)
}

// typeNameFor returns an event type of the struct, so that the mapper
// takes its type-specific paths.
func typeNameFor(strct string) string {
	for _, e := range EventTypes() {
		if e.Struct == strct {
			return e.Name
		}
	}
	return "unknown"
}

var jsonMarshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

// fill sets every settable field to a representative value. Types that
// encode themselves (events.Struct) get a small object.
func fill(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() && v.Addr().Type().Implements(jsonMarshaler) && v.Type().Name() == "Struct" {
		if err := json.Unmarshal([]byte(`{"k":"v","n":{"m":1}}`), v.Addr().Interface()); err == nil {
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() && !strings.HasPrefix(v.Type().Field(i).Name, "XXX_") {
				fill(f, depth+1)
			}
		}
	case reflect.String:
		// An IP fits keyword and ip fields alike.
		v.SetString("10.0.0.1")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}

func TestTemplateCheckerCatchesMisfits(t *testing.T) {
	mi := loadMapping(t)
	require.Empty(t, mi.check(map[string]any{"event": map[string]any{"action": "x"}, "source": map[string]any{"ip": "1.2.3.4"}}))
	errs := mi.check(map[string]any{
		"source":   map[string]any{"ip": "not-an-ip"},
		"event":    map[string]any{"action": map[string]any{"x": 1}},
		"nonsense": "x",
		"teleport": map[string]any{"audit": map[string]any{"ei": "abc", "server_labels": "scalar"}},
	})
	require.Len(t, errs, 5, "%v", errs)
	_ = mapstr.M{}
}
