package ecs

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

// benchPage is one page of 500 generated events (the generator's mix, about
// 600 bytes each) as SearchUnstructuredEvents puts it on the wire.
func benchPage(b *testing.B) []byte {
	b.Helper()
	evs := teleporttest.NewGenerator(1).Events(500, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Second)
	resp := &auditlogpb.EventsUnstructured{}
	for _, e := range evs {
		resp.Items = append(resp.Items, e.Proto())
	}
	wire, err := proto.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	return wire
}

// BenchmarkDecodePage is the ceiling: decoding a page of events from the
// wire into teleport/api's generated types (what reading the data costs at
// all, with protobuf's own decoder), and nothing else. Reported per event.
func BenchmarkDecodePage(b *testing.B) {
	wire := benchPage(b)
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

// BenchmarkDecodePageWire is teleportbeat's decoder alone (package event):
// the page decoded into the maps the mapper publishes. Reported per event.
func BenchmarkDecodePageWire(b *testing.B) {
	wire := benchPage(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)) / 500)
	b.ResetTimer()
	for i := 0; i < b.N; i += 500 {
		if _, _, err := event.DecodePage(wire); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventPath is the per-event path: decoding the page, then turning
// each event into a beat.Event with its ECS fields. Reported per event, to
// set against BenchmarkDecodePage.
func BenchmarkEventPath(b *testing.B) {
	wire := benchPage(b)
	m := NewAuditMapper()
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)) / 500)
	b.ResetTimer()
	for i := 0; i < b.N; i += 500 {
		items, _, err := event.DecodePage(wire)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			_ = m.Map(it, now)
		}
	}
}

// BenchmarkMap is the mapping alone, per event (the mapper takes over the
// event's fields, so every iteration maps a fresh copy: decoding it is
// outside the timer).
func BenchmarkMap(b *testing.B) {
	wire := benchPage(b)
	m := NewAuditMapper()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 500 {
		b.StopTimer()
		items, _, err := event.DecodePage(wire)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, it := range items {
			_ = m.Map(it, now)
		}
	}
}
