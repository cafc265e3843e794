package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/esleg/eslegclient"
	"github.com/elastic/beats/v7/libbeat/template"
	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/version"

	"github.com/gravitational/teleport/api/types/events"

	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// esIndex is the recording Elasticsearch with teleportbeat's index template
// as libbeat builds it from fields.yml (what `teleportbeat setup` and the
// Elasticsearch output install), and the data stream to write to. It
// applies the template's mappings as Elasticsearch does (package estest).
type esIndex struct {
	t     testing.TB
	es    *estest.Recorder
	index string
	n     int
}

func newESIndex(t testing.TB) *esIndex {
	t.Helper()
	cfg := template.TemplateConfig{Enabled: true}
	tmpl, err := template.New(false, "0.1.0", "teleportbeat", false, *version.MustNew("9.3.0"), cfg, false, logptest.NewTestingLogger(t, ""))
	require.NoError(t, err)
	body, err := tmpl.LoadFile("../../fields.yml")
	require.NoError(t, err)
	b, err := json.Marshal(body)
	require.NoError(t, err)
	es := estest.New()
	require.NoError(t, es.PutIndexTemplate("teleportbeat-0.1.0", b))
	return &esIndex{t: t, es: es, index: "teleportbeat-0.1.0"}
}

// encode is the event as libbeat's Elasticsearch output encodes it.
func encode(t testing.TB, ev beat.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, eslegclient.NewJSONEncoder(&buf, false).Marshal(&ev), "libbeat cannot encode the event")
	return bytes.Clone(buf.Bytes())
}

// refusal writes the event and returns Elasticsearch's refusal ("" when
// the document is stored).
func (x *esIndex) refusal(ev beat.Event) string {
	x.t.Helper()
	x.n++
	id, _ := ev.Meta["_id"].(string)
	if id == "" {
		id = fmt.Sprintf("doc-%d", x.n)
	}
	if err := x.es.Create(x.index, id, encode(x.t, ev)); err != nil {
		return err.Error()
	}
	return ""
}

// document maps one event and returns what libbeat would send, decoded.
func document(t *testing.T, m *Mapper, e *teleporttest.Event) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(encode(t, m.Map(decoded(t, e), time.Now())), &doc))
	return doc
}

// TestDocumentsFitTheTemplate: every
// sample event and every generated event type, mapped, is checked against
// the index template: every field path is defined and every value fits
// its type.
func TestDocumentsFitTheTemplate(t *testing.T) {
	es := newESIndex(t)
	evs, err := teleporttest.CorpusEvents()
	require.NoError(t, err)
	g := teleporttest.NewGenerator(42)
	evs = append(evs, g.Events(2000, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Second)...)
	_, rec, up := g.Session(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 40)
	evs = append(append(evs, rec...), up)

	types := map[string]bool{}
	for _, newMapper := range []func() *Mapper{NewAuditMapper, NewSessionMapper} {
		for _, e := range evs {
			types[e.Type] = true
			// A new mapper for each event: what a restarted beat writes
			// meets what the index learned before.
			m := newMapper()
			out := m.Map(decoded(t, e), time.Now())
			out.Meta = nil
			require.Empty(t, es.refusal(out), "event %s (%s) as %s", e.ID, e.Type, m.dataset)
		}
	}
	require.GreaterOrEqual(t, len(types), 150)
}

// TestEveryAPIEventStructFitsTheTemplate fills every field of every event
// struct of the pinned teleport/api, encodes it as Teleport does (JSON
// field names) and checks the mapped document against the template.
func TestEveryAPIEventStructFitsTheTemplate(t *testing.T) {
	es := newESIndex(t)
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
		require.Empty(t, es.refusal(m.Map(decoded(t, e), time.Now())), "event struct %s", typ.Name())
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
