package ecs

import (
	"bytes"
	"testing"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/esleg/eslegclient"
	"github.com/elastic/elastic-agent-libs/mapstr"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// BenchmarkEventPath is the per-event path: decoding the page, then turning
// each event into a beat.Event with its ECS fields. Reported per event, to
// set against internal/event's BenchmarkDecodePage.
func BenchmarkEventPath(b *testing.B) {
	wire := teleporttest.WirePage(b, 500) // as SearchUnstructuredEvents puts it on the wire
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
	wire := teleporttest.WirePage(b, 500) // as SearchUnstructuredEvents puts it on the wire
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

// BenchmarkElasticsearchEncoding is what libbeat's Elasticsearch output
// does with each mapped event, for comparison with the per-event path: the
// event encoded to JSON by the output's encoder (eslegclient's, as its
// event encoder does when the event enters the queue), then its bulk line
// written through gzip at the output's default compression level (1), a
// bulk request of 1,600 events at a time. Reported per event.
func BenchmarkElasticsearchEncoding(b *testing.B) {
	wire := teleporttest.WirePage(b, 500) // as SearchUnstructuredEvents puts it on the wire
	items, _, err := event.DecodePage(wire)
	if err != nil {
		b.Fatal(err)
	}
	m := NewAuditMapper()
	now := time.Now()
	evs := make([]beat.Event, len(items))
	for i, it := range items {
		evs[i] = m.Map(it, now)
	}
	var jsonBuf, bulkBuf bytes.Buffer
	enc := eslegclient.NewJSONEncoder(&jsonBuf, false)
	gz, err := eslegclient.NewGzipEncoder(1, &bulkBuf, false)
	if err != nil {
		b.Fatal(err)
	}
	meta := mapstr.M{"create": mapstr.M{"_index": "teleportbeat-9.3.0", "_id": ""}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := &evs[i%len(evs)]
		enc.Reset()
		if err := enc.Marshal(ev); err != nil {
			b.Fatal(err)
		}
		doc := bytes.Clone(jsonBuf.Bytes())
		meta["create"].(mapstr.M)["_id"] = ev.Meta["_id"]
		if err := gz.AddRaw(meta); err != nil {
			b.Fatal(err)
		}
		if err := gz.AddRaw(eslegclient.RawEncoding{Encoding: doc}); err != nil {
			b.Fatal(err)
		}
		if i%1600 == 1599 {
			gz.Reset()
		}
	}
}
