package event_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// FuzzDecodeWire decodes arbitrary protobuf messages as they come off the
// wire: no input makes the decoder panic, a payload Decode accepts is one
// Load decodes, and whatever protobuf's own
// decoder reads as an EventUnstructured, teleportbeat's reads too, with
// the same type, id, index, time and key. Run it with
// `go test -fuzz FuzzDecodeWire ./internal/event`.
func FuzzDecodeWire(f *testing.F) {
	teleporttest.AddCorpusSeeds(f, 40)
	f.Fuzz(func(t *testing.T, wire []byte) {
		d, derr := event.Decode(wire)
		if derr == nil {
			// Decode checks the payload that Load decodes later: what
			// it lets through must decode.
			if err := d.Load(); err != nil {
				t.Fatalf("Decode accepted the payload, Load says: %v", err)
			}
		}
		var ev auditlogpb.EventUnstructured
		if err := proto.Unmarshal(wire, &ev); err != nil {
			return // teleportbeat's decoder may read more than protobuf's; it must only not panic
		}
		if derr != nil {
			t.Fatalf("protobuf decodes the event, teleportbeat's decoder says: %v", derr)
		}
		if d.Type != ev.GetType() || d.ID != ev.GetId() || d.Index != ev.GetIndex() {
			t.Fatalf("decoded type %q id %q index %d, protobuf: %q %q %d", d.Type, d.ID, d.Index, ev.GetType(), ev.GetId(), ev.GetIndex())
		}
		if ts := ev.GetTime(); ts != nil && (ts.GetSeconds() != 0 || ts.GetNanos() != 0) && !d.Time.Equal(ts.AsTime()) {
			t.Fatalf("decoded time %v, protobuf: %v", d.Time, ts.AsTime())
		}
		if d.Key() != event.IDOf(&ev) {
			t.Fatalf("key %q, IDOf %q", d.Key(), event.IDOf(&ev))
		}
	})
}

// BenchmarkDecodePage is the ceiling: decoding a page of events from the
// wire into teleport/api's generated types (what reading the data costs at
// all, with protobuf's own decoder), and nothing else. Reported per event.
func BenchmarkDecodePage(b *testing.B) {
	wire := teleporttest.WirePage(b, 500) // as SearchUnstructuredEvents puts it on the wire
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)) / 500)
	b.ResetTimer()
	for i := 0; i < b.N; i += 500 {
		var page auditlogpb.EventsUnstructured
		if err := proto.Unmarshal(wire, &page); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePageWire is teleportbeat's decoder (Decode, DecodePage):
// "read" is what a reader does with a page (header fields, key, each
// payload checked, the bytes held), "read+load" adds what the pump does
// before mapping (Load: the payloads decoded into the maps it publishes).
// Reported per event.
func BenchmarkDecodePageWire(b *testing.B) {
	wire := teleporttest.WirePage(b, 500) // as SearchUnstructuredEvents puts it on the wire
	for _, load := range []bool{false, true} {
		name := "read"
		if load {
			name = "read+load"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)) / 500)
			for i := 0; i < b.N; i += 500 {
				evs, _, err := event.DecodePage(wire)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range evs {
					if !load {
						break
					}
					if err := e.Load(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
