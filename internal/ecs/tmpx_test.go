package ecs

import (
	"bytes"
	"testing"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/esleg/eslegclient"
	"github.com/elastic/elastic-agent-libs/mapstr"
	"github.com/teleportbeat/teleportbeat/internal/event"
)

func benchEnc(b *testing.B, strip bool) {
	wire := benchPage(b)
	items, _, _ := event.DecodePage(wire)
	m := NewAuditMapper()
	now := time.Now()
	evs := make([]beat.Event, len(items))
	total := 0
	for i, it := range items {
		evs[i] = m.Map(it, now)
		if strip {
			a := evs[i].Fields["teleport"].(mapstr.M)["audit"].(mapstr.M)
			for _, k := range []string{"time", "uid", "event", "code", "user", "addr", "namespace", "ei"} {
				delete(a, k)
			}
		}
	}
	var jsonBuf, bulkBuf bytes.Buffer
	enc := eslegclient.NewJSONEncoder(&jsonBuf, false)
	for i := range evs {
		enc.Reset()
		enc.Marshal(&evs[i])
		total += jsonBuf.Len()
	}
	b.ReportMetric(float64(total)/float64(len(evs)), "docbytes")
	gz, _ := eslegclient.NewGzipEncoder(1, &bulkBuf, false)
	meta := mapstr.M{"create": mapstr.M{"_index": "teleportbeat-9.3.0", "_id": ""}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := &evs[i%len(evs)]
		enc.Reset()
		enc.Marshal(ev)
		doc := bytes.Clone(jsonBuf.Bytes())
		meta["create"].(mapstr.M)["_id"] = ev.Meta["_id"]
		gz.AddRaw(meta)
		gz.AddRaw(eslegclient.RawEncoding{Encoding: doc})
		if i%1600 == 1599 {
			gz.Reset()
		}
	}
}
func BenchmarkEncFull(b *testing.B)  { benchEnc(b, false) }
func BenchmarkEncStrip(b *testing.B) { benchEnc(b, true) }
