package shipper

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
	pubtest "github.com/elastic/beats/v7/libbeat/publisher/testing"

	"github.com/teleportbeat/teleportbeat/internal/auditlog"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/late"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
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

// TestPumpPublishesWithPositionsAndCommitsOnACK sends the pump what the
// reader sends (head batches with a position per event, the sweeps' first
// word, late events with their new sweep cursors, a position without
// events) and checks, ACK by ACK, the positions committed and their order,
// and that acknowledged events become acknowledged in the late-event set.
func TestPumpPublishesWithPositionsAndCommitsOnACK(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var commits []*cursor.Position
	set := late.NewSet(0)
	acks := late.NewAcks(set, nil, nil)
	out := &fakeOutput{}
	pub, err := cursor.NewPublisher(out.pipeline(), cursor.PublisherConfig[*cursor.Position]{
		Commit: func(p *cursor.Position) { commits = append(commits, p) },
		OnACK:  acks.Acked,
	})
	require.NoError(t, err)

	var observed []string
	batches := make(chan auditlog.Batch, 10)
	start := &cursor.Position{WindowStart: t0.Add(-time.Hour)}
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
		acks:   acks,
		hold:   func(ctx context.Context) bool { return ctx.Err() == nil },
		now:    func() time.Time { return t0 },
		cur:    start,
	}
	evs := decodedEvents(t, 5, t0.Add(-10*time.Minute))
	for _, e := range evs {
		set.Read(late.RefOf(e)) // as the reader does
	}
	pos := func(key string) *cursor.Position {
		return &cursor.Position{WindowStart: start.WindowStart, StartKey: key}
	}
	s0 := []time.Time{t0.Add(-20 * time.Minute)}
	s1 := []time.Time{t0.Add(-15 * time.Minute)}
	p1, p2, p3 := pos("p1"), pos("p2"), pos("p3")
	after := pos("after")

	p.handle(auditlog.Batch{Sweeps: s0}) // the sweeper's first word
	require.Len(t, commits, 1, "nothing in flight: committed at once")
	require.Equal(t, s0, commits[0].Sweeps)
	require.Equal(t, start.WindowStart, commits[0].WindowStart)

	p.handle(auditlog.Batch{Events: evs[:2], Positions: []*cursor.Position{p1, p2}})
	p.handle(auditlog.Batch{Events: evs[2:3], Late: true, Sweeps: s1})
	p.handle(auditlog.Batch{Events: evs[3:5], Positions: []*cursor.Position{p3, pos("p4")}})
	p.handle(auditlog.Batch{After: after})
	require.Equal(t, []string{evs[0].Key(), evs[1].Key(), evs[2].Key(), evs[3].Key(), evs[4].Key()}, out.ids())
	require.Len(t, observed, 5)
	require.EqualValues(t, 5, pub.Published())

	out.ack(1)
	require.Same(t, p1, commits[len(commits)-1])
	require.Equal(t, s0, p1.Sweeps, "head positions carry the sweep cursors of their time")

	// The late event is published at p2 (the head's last position); the
	// new sweep cursors are committed only once it is acknowledged.
	out.ack(1)
	require.Same(t, p2, commits[len(commits)-1])
	out.ack(1)
	last := commits[len(commits)-1]
	require.Equal(t, "p2", last.StartKey)
	require.Equal(t, s1, last.Sweeps)

	out.ack(2)
	last = commits[len(commits)-1]
	require.Equal(t, "after", last.StartKey, "the position without events follows the last event")
	require.Equal(t, s1, last.Sweeps)
	require.Equal(t, s1, p3.Sweeps)

	// Every acknowledged event is acknowledged in the set: it survives a
	// restart through the state file; pending ones would not.
	path := filepath.Join(t.TempDir(), "state")
	require.NoError(t, late.SaveState(path, []byte("{}"), set, 0o600))
	restored := late.NewSet(0)
	_, err = late.LoadState(path, restored)
	require.NoError(t, err)
	for _, e := range evs {
		require.True(t, restored.Has(late.RefOf(e)), e.Key())
	}
}

// TestPumpHoldsWhileThePositionCannotBePersisted: while hold says the
// registry cannot take the position, the pump takes no batch.
func TestPumpHoldsWhileThePositionCannotBePersisted(t *testing.T) {
	out := &fakeOutput{}
	pub, err := cursor.NewPublisher(out.pipeline(), cursor.PublisherConfig[*cursor.Position]{Commit: func(*cursor.Position) {}})
	require.NoError(t, err)
	batches := make(chan auditlog.Batch, 1)
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
		cur: &cursor.Position{WindowStart: time.Now()},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	evs := decodedEvents(t, 1, time.Now().Add(-time.Minute))
	batches <- auditlog.Batch{Events: evs, Positions: []*cursor.Position{{WindowStart: time.Now()}}}
	<-held
	require.Len(t, batches, 1, "the batch waits while the registry is not writable")
	require.Empty(t, out.ids())
	close(writable)
	<-held // the next round: the batch was taken
	require.Equal(t, []string{evs[0].Key()}, out.ids())
	cancel()
	<-done
}
