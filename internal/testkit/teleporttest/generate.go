package teleporttest

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/build/samples"
)

// Generator is samples.Generator with its events ready to be stored.
type Generator struct{ *samples.Generator }

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) *Generator { return &Generator{samples.NewGenerator(seed)} }

// Events returns n events starting at start, spaced by step.
func (g *Generator) Events(n int, start time.Time, step time.Duration) []*Event {
	return mustEvents(g.Fields(n, start, step))
}

// Session generates the recording of an interactive SSH session of n
// events and the session.upload audit event Teleport emits once the
// recording is stored.
func (g *Generator) Session(start time.Time, n int) (sessionID string, recording []*Event, upload *Event) {
	sid, rec, up := g.Generator.Session(start, n)
	return sid, mustEvents(rec), mustEvents([]map[string]any{up})[0]
}

// recording generates the events of session sid and its upload event.
func (g *Generator) recording(sid string, start time.Time, n int) (recording []*Event, upload *Event) {
	rec, up := g.Recording(sid, start, n)
	return mustEvents(rec), mustEvents([]map[string]any{up})[0]
}

// mustEvents builds generated events, which always encode: a failure is
// a bug here.
func mustEvents(fields []map[string]any) []*Event {
	out := make([]*Event, 0, len(fields))
	for _, f := range fields {
		e, err := NewEvent(f)
		if err != nil {
			panic(fmt.Sprintf("teleporttest: generated event does not encode: %v", err))
		}
		out = append(out, e)
	}
	return out
}

// BenchPage is one page of n generated events (the generator's mix, about
// 600 bytes each) as SearchUnstructuredEvents puts it on the wire: the
// input of the decoder's and the mapper's benchmarks.
func BenchPage(n int) ([]byte, error) {
	evs := NewGenerator(1).Events(n, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Second)
	resp := &auditlogpb.EventsUnstructured{}
	for _, e := range evs {
		resp.Items = append(resp.Items, e.Proto())
	}
	return proto.Marshal(resp)
}

// WirePage is BenchPage for a benchmark or test: the page of n generated
// events, or tb fails.
func WirePage(tb testing.TB, n int) []byte {
	tb.Helper()
	wire, err := BenchPage(n)
	if err != nil {
		tb.Fatal(err)
	}
	return wire
}

// AddCorpusSeeds adds the first n sample events, as they come off the
// wire, to a fuzz test's seed corpus.
func AddCorpusSeeds(f *testing.F, n int) {
	f.Helper()
	evs, err := CorpusEvents()
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range evs[:min(n, len(evs))] {
		b, err := proto.Marshal(e.Proto())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
