package ecs

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/elastic/beats/v7/libbeat/beat"
	jsoncodec "github.com/elastic/beats/v7/libbeat/outputs/codec/json"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// checkMapped holds for every event the mapper returns, whatever it was
// given: the dataset and an _id are set, the timestamp is set, and the
// output's JSON encoder turns it into valid UTF-8 JSON.
func checkMapped(t *testing.T, out beat.Event) {
	t.Helper()
	if out.Timestamp.IsZero() {
		t.Fatal("no @timestamp")
	}
	if id, _ := out.Meta["_id"].(string); id == "" {
		t.Fatalf("no _id: %v", out.Meta)
	}
	if ds, _ := out.Fields.GetValue("event.dataset"); ds != DatasetAudit {
		t.Fatalf("event.dataset %v", ds)
	}
	enc := jsoncodec.New("9.3.0", jsoncodec.Config{EscapeHTML: false})
	b, err := enc.Encode("teleportbeat", &out)
	if err != nil {
		t.Fatalf("the output cannot encode the event: %v", err)
	}
	if !utf8.Valid(b) || !json.Valid(b) {
		t.Fatalf("the encoded event is not valid UTF-8 JSON: %q", b)
	}
}

func corpusJSON(f *testing.F) [][]byte {
	evs, err := teleporttest.CorpusEvents()
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, e := range evs {
		b, err := protojson.Marshal(e.Proto().GetUnstructured())
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzMapJSON maps arbitrary JSON objects, as Teleport's unstructured
// events carry them (SearchUnstructuredEvents turns the event's JSON into
// a protobuf Struct), seeded with the sample corpus. Run it with
// `go test -fuzz FuzzMapJSON ./internal/ecs`; the inputs it found worth
// keeping are in testdata/fuzz/FuzzMapJSON and run with every `go test`.
func FuzzMapJSON(f *testing.F) {
	for _, b := range corpusJSON(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"event":"x","addr.local":"1.2.3.4:5","addr":{"local":7}}`))
	f.Add([]byte(`{"time":"not a time","uid":"","event":""}`))
	f.Add([]byte(`{"time":"2999-01-01T00:00:00Z","event":"db.session.query","db_query":"\u0000\ud800"}`))
	f.Add([]byte(`{"a.b.c":1,"a":{"b":{"c":2}},"a.b":[1,{"c":3}]}`))
	m := NewAuditMapper()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s structpb.Struct
		if err := protojson.Unmarshal(data, &s); err != nil {
			return // not a JSON object: Teleport never sends it
		}
		ev := &auditlogpb.EventUnstructured{Unstructured: &s}
		if v, ok := s.GetFields()["event"]; ok {
			ev.Type = v.GetStringValue()
		}
		if v, ok := s.GetFields()["uid"]; ok {
			ev.Id = v.GetStringValue()
		}
		if v, ok := s.GetFields()["time"]; ok {
			if ts, err := time.Parse(time.RFC3339Nano, v.GetStringValue()); err == nil {
				ev.Time = timestamppb.New(ts)
			}
		}
		d, err := event.FromProto(ev)
		if err != nil {
			t.Fatalf("an event protobuf encodes does not decode: %v", err)
		}
		checkMapped(t, m.Map(d, now))
	})
}

// FuzzMapWire maps whatever teleportbeat's decoder reads off the wire
// (arbitrary protobuf messages): the mapper never panics, its events are
// valid for the output, and an event's _id is its uid. That the decoder
// agrees with protobuf's is internal/event's FuzzDecodeWire.
func FuzzMapWire(f *testing.F) {
	teleporttest.AddCorpusSeeds(f, 40)
	m := NewAuditMapper()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, wire []byte) {
		d, err := event.Decode(wire)
		if err != nil {
			return
		}
		out := m.Map(d, now)
		checkMapped(t, out)
		if uid, _ := d.Fields["uid"].(string); uid != "" && d.SharedUID() == "" && out.Meta["_id"] != uid {
			t.Fatalf("_id %v, uid %q", out.Meta["_id"], uid)
		}
	})
}
