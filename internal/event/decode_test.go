package event_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/elastic/elastic-agent-libs/mapstr"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// reference converts a protobuf Value the way teleportbeat did before it
// had its own decoder (protobuf's generated types, then a conversion):
// the decoder must give the same.
func reference(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if f == float64(int64(f)) && f < 1<<53 && f > -(1<<53) {
			return int64(f)
		}
		return f
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		m := mapstr.M{}
		for key, e := range k.StructValue.GetFields() {
			if g := reference(e); g != nil {
				m[key] = g
			}
		}
		return m
	case *structpb.Value_ListValue:
		out := []any{}
		for _, e := range k.ListValue.GetValues() {
			if g := reference(e); g != nil {
				out = append(out, g)
			}
		}
		return out
	}
	return nil
}

func referenceFields(s *structpb.Struct) mapstr.M {
	m := mapstr.M{}
	for k, v := range s.GetFields() {
		if g := reference(v); g != nil {
			m[k] = g
		}
	}
	return m
}

func corpus(t *testing.T) []*teleporttest.Event {
	t.Helper()
	evs, err := teleporttest.CorpusEvents()
	require.NoError(t, err)
	g := teleporttest.NewGenerator(7)
	evs = append(evs, g.Events(3000, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Second)...)
	_, rec, _ := g.Session(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), 50)
	return append(evs, rec...)
}

// TestDecodeGivesWhatProtobufGives: every sample and generated event,
// decoded off the wire, has the type, id, time, index, fields and key that
// protobuf's generated decoder and the reference conversion give.
func TestDecodeGivesWhatProtobufGives(t *testing.T) {
	for _, e := range corpus(t) {
		pb := e.Proto()
		wire, err := proto.Marshal(pb)
		require.NoError(t, err)
		d, err := event.Decode(wire)
		require.NoError(t, err, e.ID)
		require.Equal(t, pb.GetType(), d.Type, e.ID)
		require.Equal(t, pb.GetId(), d.ID, e.ID)
		require.Equal(t, pb.GetIndex(), d.Index, e.ID)
		var want time.Time
		if ts := pb.GetTime(); ts.GetSeconds() != 0 || ts.GetNanos() != 0 {
			want = ts.AsTime()
		}
		require.Equal(t, want, d.Time, e.ID)
		require.Equal(t, referenceFields(pb.GetUnstructured()), loaded(t, d), e.ID)
		require.Equal(t, event.IDOf(pb), d.Key(), e.ID)
	}
}

// TestDecodePageAndExported decodes the two messages the reader receives:
// a search page with its next key, and an export stream item with its
// cursor.
func TestDecodePageAndExported(t *testing.T) {
	evs := corpus(t)[:300]
	page := &auditlogpb.EventsUnstructured{LastKey: "next-page"}
	for _, e := range evs {
		page.Items = append(page.Items, e.Proto())
	}
	wire, err := proto.Marshal(page)
	require.NoError(t, err)
	got, key, err := event.DecodePage(wire)
	require.NoError(t, err)
	require.Equal(t, "next-page", key)
	require.Len(t, got, len(evs))
	for i, e := range evs {
		require.Equal(t, event.IDOf(e.Proto()), got[i].Key())
	}

	wire, err = proto.Marshal(&auditlogpb.ExportEventUnstructured{Event: evs[5].Proto(), Cursor: "a1:6"})
	require.NoError(t, err)
	ex, cur, err := event.DecodeExported(wire)
	require.NoError(t, err)
	require.Equal(t, "a1:6", cur)
	require.Equal(t, event.IDOf(evs[5].Proto()), ex.Key())
	require.Equal(t, evs[5].Proto().GetType(), ex.Type)
}

// TestDecodeEdgeCases: what protobuf allows and encoders rarely write.
func TestDecodeEdgeCases(t *testing.T) {
	t.Run("no time, no payload", func(t *testing.T) {
		wire, err := proto.Marshal(&auditlogpb.EventUnstructured{Type: "x", Time: &timestamppb.Timestamp{}})
		require.NoError(t, err)
		d, err := event.Decode(wire)
		require.NoError(t, err)
		require.True(t, d.Time.IsZero())
		require.Equal(t, mapstr.M{}, loaded(t, d))
		require.Equal(t, event.IDOf(&auditlogpb.EventUnstructured{}), d.Key())
	})
	t.Run("nulls and empty values are left out, also in lists", func(t *testing.T) {
		s := &structpb.Struct{Fields: map[string]*structpb.Value{
			"a": structpb.NewNullValue(),
			"b": {},
			"c": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNullValue(), structpb.NewNumberValue(1.5)}}),
			"d": structpb.NewNumberValue(-3),
		}}
		d := decode(t, &auditlogpb.EventUnstructured{Unstructured: s})
		require.Equal(t, mapstr.M{"c": []any{1.5}, "d": int64(-3)}, loaded(t, d))
	})
	t.Run("dotted keys are kept as written, at every level", func(t *testing.T) {
		s, err := structpb.NewStruct(map[string]any{"addr.remote": "1.2.3.4:5", "o": map[string]any{"x.y": "z", "x": "w"}})
		require.NoError(t, err)
		d := decode(t, &auditlogpb.EventUnstructured{Unstructured: s})
		require.Equal(t, mapstr.M{"addr.remote": "1.2.3.4:5", "o": mapstr.M{"x.y": "z", "x": "w"}}, loaded(t, d))
	})
	t.Run("a payload sent in two parts is merged, as protobuf does", func(t *testing.T) {
		a, err := proto.Marshal(&auditlogpb.EventUnstructured{Type: "x", Unstructured: mustStruct(t, map[string]any{"event": "x"})})
		require.NoError(t, err)
		b, err := proto.Marshal(&auditlogpb.EventUnstructured{Unstructured: mustStruct(t, map[string]any{"uid": "u-9"})})
		require.NoError(t, err)
		wire := append(a, b...)
		var pb auditlogpb.EventUnstructured
		require.NoError(t, proto.Unmarshal(wire, &pb))
		d, err := event.Decode(wire)
		require.NoError(t, err)
		require.Equal(t, referenceFields(pb.GetUnstructured()), loaded(t, d))
		require.Equal(t, "u-9", d.Key())
	})
	t.Run("unknown fields are skipped", func(t *testing.T) {
		wire, err := proto.Marshal(&auditlogpb.EventUnstructured{Type: "x", Unstructured: mustStruct(t, map[string]any{"uid": "u-1"})})
		require.NoError(t, err)
		wire = protowire.AppendTag(wire, 99, protowire.BytesType)
		wire = protowire.AppendString(wire, "from a newer Teleport")
		wire = protowire.AppendTag(wire, 98, protowire.Fixed32Type)
		wire = protowire.AppendFixed32(wire, 7)
		d, err := event.Decode(wire)
		require.NoError(t, err)
		require.Equal(t, "u-1", d.Key())
	})
	t.Run("a truncated message is an error", func(t *testing.T) {
		wire, err := proto.Marshal(&auditlogpb.EventUnstructured{Type: "x", Unstructured: mustStruct(t, map[string]any{"uid": "u-1", "event": "x"})})
		require.NoError(t, err)
		_, err = event.Decode(wire[:len(wire)-3])
		require.ErrorContains(t, err, "truncated")
	})
}

// TestSameTellsReadsOfOneEventFromDistinctEvents: the wire form of a
// payload differs between reads (map order), the event does not.
func TestSameTellsReadsOfOneEventFromDistinctEvents(t *testing.T) {
	fields := map[string]any{"event": "x", "a": "1", "b": "2", "c": map[string]any{"d": 1.0, "e": true}}
	var wires [][]byte
	for range 20 {
		// Marshalling a map is in random order: some of these differ.
		w, err := proto.Marshal(&auditlogpb.EventUnstructured{Id: "random", Unstructured: mustStruct(t, fields)})
		require.NoError(t, err)
		wires = append(wires, w)
	}
	first, err := event.Decode(wires[0])
	require.NoError(t, err)
	for _, w := range wires[1:] {
		d, err := event.Decode(w)
		require.NoError(t, err)
		require.True(t, event.Same(first, d))
		require.Equal(t, first.Key(), d.Key())
		require.Equal(t, first.ContentHash(), d.ContentHash())
	}
	fields["b"] = "3"
	other := decode(t, &auditlogpb.EventUnstructured{Id: "random", Unstructured: mustStruct(t, fields)})
	require.False(t, event.Same(first, other))
	require.NotEqual(t, first.Key(), other.Key())
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return s
}

func decode(t *testing.T, pb *auditlogpb.EventUnstructured) *event.Event {
	t.Helper()
	d, err := event.FromProto(pb)
	require.NoError(t, err)
	return d
}

// TestDeepNestingIsAnErrorNotACrash: a payload nested deeper than any
// protobuf decoder accepts is refused with an error instead of running
// out of stack.
func TestDeepNestingIsAnErrorNotACrash(t *testing.T) {
	// A list in a list in ..., written inside out: each level is a Value
	// whose list_value (field 6) holds a ListValue of one Value.
	v := protowire.AppendTag(nil, 3, protowire.BytesType)
	v = protowire.AppendString(v, "bottom")
	for range 10002 {
		list := protowire.AppendTag(nil, 1, protowire.BytesType)
		list = protowire.AppendBytes(list, v)
		v = protowire.AppendTag(nil, 6, protowire.BytesType)
		v = protowire.AppendBytes(v, list)
	}
	entry := protowire.AppendTag(nil, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "deep")
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendBytes(entry, v)
	payload := protowire.AppendTag(nil, 1, protowire.BytesType)
	payload = protowire.AppendBytes(payload, entry)
	wire := protowire.AppendTag(nil, 5, protowire.BytesType)
	wire = protowire.AppendBytes(wire, payload)

	_, err := event.Decode(wire)
	require.ErrorContains(t, err, "nested more than 10000 deep")
	var pb auditlogpb.EventUnstructured
	require.Error(t, proto.Unmarshal(wire, &pb), "protobuf refuses it too")
}

// loaded is the event's payload, decoded (Decode only checks it).
func loaded(t *testing.T, e *event.Event) mapstr.M {
	t.Helper()
	require.Nil(t, e.Fields, "decoded when it is published, not when read")
	require.NoError(t, e.Load())
	return e.Fields
}
