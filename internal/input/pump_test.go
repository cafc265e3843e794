package input

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
	pubtest "github.com/elastic/beats/v7/libbeat/publisher/testing"

	"github.com/teleportbeat/teleportbeat/internal/audit"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// fakeOutput is a pipeline whose output acknowledges when told to, through
// the client's real ACK listener (libbeat's EventPrivateReporter).
type fakeOutput struct {
	mu        sync.Mutex
	listener  beat.EventListener
	published []beat.Event
}

func (f *fakeOutput) pipeline() beat.PipelineConnector {
	return pubtest.FakeConnector{ConnectFunc: func(cfg beat.ClientConfig) (beat.Client, error) {
		f.listener = cfg.EventListener
		return &pubtest.FakeClient{PublishFunc: func(e beat.Event) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.listener.AddEvent(e, true)
			f.published = append(f.published, e)
		}}, nil
	}}
}

func (f *fakeOutput) ack(n int) { f.listener.ACKEvents(n) }

func (f *fakeOutput) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.published {
		id, _ := e.Fields.GetValue("event.id")
		out = append(out, id.(string))
	}
	return out
}

func decodedEvents(t *testing.T, n int, start time.Time) []*event.Event {
	t.Helper()
	var out []*event.Event
	for _, e := range teleporttest.NewGenerator(11).Events(n, start, time.Second) {
		d, err := e.Decoded()
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

// TestPumpPublishesWithPositionsAndCommitsOnACK sends the pump finished
// batches as the reader hands them over (events with their positions, a
// position without events) and checks, ACK by ACK, the positions committed
// and their order, that observers see each event decoded before it is
// mapped, and that the output's acknowledgements reach the ACK hook.
func TestPumpPublishesWithPositionsAndCommitsOnACK(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var commits []*cursor.Position
	acked := 0
	out := &fakeOutput{}
	pub, err := cursor.NewPublisher(out.pipeline(), cursor.PublisherConfig[*cursor.Position]{
		Commit: func(p *cursor.Position) { commits = append(commits, p) },
		OnACK:  func(n int) { acked += n },
	})
	require.NoError(t, err)

	var observed []string
	batches := make(chan audit.Batch, 10)
	p := &pump{
		batches: batches,
		observers: []observer{func(e *event.Event) {
			// Observers run before mapping takes the fields, which
			// the pump has decoded by then.
			require.NotNil(t, e.Fields)
			observed = append(observed, e.Key())
		}},
		mapper: ecs.NewAuditMapper(),
		pub:    pub,
		hold:   func(ctx context.Context) bool { return ctx.Err() == nil },
		now:    func() time.Time { return t0 },
	}
	evs := decodedEvents(t, 5+publishChunk, t0.Add(-10*time.Minute))
	pos := func(key string) *cursor.Position { return &cursor.Position{StartKey: key} }
	first := pos("first")
	p.handle(audit.Batch{Advance: first})
	require.Equal(t, []*cursor.Position{first}, commits, "nothing in flight: committed at once")

	p1, p2 := pos("p1"), pos("p2")
	p.handle(audit.Batch{Events: evs[:2], Positions: []*cursor.Position{p1, p2}})
	// More than a chunk: published in chunks, positions kept in step.
	var many []*cursor.Position
	for i := range evs[2:] {
		many = append(many, pos(fmt.Sprint("m", i)))
	}
	after := pos("after")
	p.handle(audit.Batch{Events: evs[2:], Positions: many, Advance: after})
	var keys []string
	for _, e := range evs {
		keys = append(keys, e.Key())
	}
	require.Equal(t, keys, out.ids())
	require.Equal(t, keys, observed)
	require.EqualValues(t, len(evs), pub.Published())

	out.ack(1)
	require.Same(t, p1, commits[len(commits)-1])
	out.ack(2)
	require.Same(t, many[0], commits[len(commits)-1])
	out.ack(len(evs) - 4)
	require.Same(t, many[len(many)-2], commits[len(commits)-1])
	out.ack(1)
	require.Same(t, after, commits[len(commits)-1], "the position without events follows the last event")
	require.Equal(t, len(evs), acked)
}

// TestPumpHoldsWhileThePositionCannotBePersisted: while hold says the
// registry cannot take the position, the pump takes no batch.
func TestPumpHoldsWhileThePositionCannotBePersisted(t *testing.T) {
	out := &fakeOutput{}
	pub, err := cursor.NewPublisher(out.pipeline(), cursor.PublisherConfig[*cursor.Position]{Commit: func(*cursor.Position) {}})
	require.NoError(t, err)
	batches := make(chan audit.Batch, 1)
	writable := make(chan struct{})
	held := make(chan struct{}, 10)
	p := &pump{
		batches: batches,
		mapper:  ecs.NewAuditMapper(),
		pub:     pub,
		hold: func(ctx context.Context) bool {
			held <- struct{}{}
			select {
			case <-writable:
				return true
			case <-ctx.Done():
				return false
			}
		},
		now: time.Now,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	evs := decodedEvents(t, 1, time.Now().Add(-time.Minute))
	batches <- audit.Batch{Events: evs, Positions: []*cursor.Position{{WindowStart: time.Now()}}}
	<-held
	require.Len(t, batches, 1, "the batch waits while the registry is not writable")
	require.Empty(t, out.ids())
	close(writable)
	<-held // the next round: the batch was taken
	require.Equal(t, []string{evs[0].Key()}, out.ids())
	cancel()
	<-done
}
