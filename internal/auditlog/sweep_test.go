package auditlog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/eventid"
	"github.com/teleportbeat/teleportbeat/internal/late"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

// midday moves the harness's clock away from midnight, where windows end.
func (h *harness) midday() time.Time {
	h.setNow(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	return h.clock()
}

func (h *harness) lateConfig(set *late.Set, ages ...time.Duration) Config {
	cfg := h.config()
	cfg.SafetyMargin = 0
	cfg.Late = LateConfig{Ages: ages, Set: set, Lag: &late.Lag{}}
	return cfg
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

func lateIDs(bs []Batch) []string {
	var out []string
	for _, b := range bs {
		if b.Late {
			for _, e := range b.Events {
				out = append(out, e.Key())
			}
		}
	}
	return out
}

func protoIDs(evs []*teleporttest.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, eventid.Of(e.Proto()))
	}
	return out
}

// batches follows a reader's output: the events sent (late ones apart) and
// the sweep cursors last stated.
type batches struct {
	t      *testing.T
	out    <-chan Batch
	head   []string
	late   []string
	sweeps []time.Time
}

// until reads batches until cond holds.
func (b *batches) until(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case bt := <-b.out:
			for _, e := range bt.Events {
				if bt.Late {
					b.late = append(b.late, e.Key())
				} else {
					b.head = append(b.head, e.Key())
				}
			}
			if bt.Sweeps != nil {
				b.sweeps = bt.Sweeps
			}
		case <-deadline:
			b.t.Fatalf("timed out waiting for %s (head %d, late %d, sweeps %v)", what, len(b.head), len(b.late), b.sweeps)
		}
	}
}

func (b *batches) swept(i int, at time.Time) func() bool {
	return func() bool { return len(b.sweeps) > i && !b.sweeps[i].Before(at) }
}

// TestSweepsCatchEventsThatAppearBehindTheHead: the head has read past
// full pages; events then inserted at times behind its page are found by
// the sweep whose age covers them, once, and only they.
func TestSweepsCatchEventsThatAppearBehindTheHead(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	g := teleporttest.NewGenerator(7)
	// 300 events over the last ten minutes: three full pages of 100.
	h.srv.Store.Add(g.Events(300, now.Add(-10*time.Minute), 2*time.Second)...)
	set := late.NewSet(0)
	r := h.reader(h.lateConfig(set, time.Minute, 8*time.Minute))
	out, _ := h.runReader(r, cursor.Position{WindowStart: now.Add(-15 * time.Minute)})
	b := &batches{t: t, out: out}
	// The head reads everything, and the 1m sweep sweeps up to a minute
	// ago: what appears behind that now is for the 8m sweep only.
	b.until("the head and the 1m sweep", func() bool { return len(b.head) == 300 && b.swept(0, now.Add(-time.Minute))() })
	require.Empty(t, b.late, "nothing is late yet")

	// Events that became visible late: 30 s and 4 minutes behind now,
	// behind the head's page (which starts after the 300th event).
	late30s := g.Events(3, now.Add(-30*time.Second), time.Second)
	late4m := g.Events(4, now.Add(-4*time.Minute), time.Second)
	h.srv.Store.Add(late30s...)
	h.srv.Store.Add(late4m...)

	// 90 s on, the 1m sweep reaches the events 30 s late; the 4m ones are
	// behind its cursor. It stops at the head's page floor (the 300th
	// event): the head re-reads from there on every poll.
	floor := now.Add(-2 * time.Second)
	h.advance(90 * time.Second)
	b.until("the 1m sweep", b.swept(0, floor))
	require.ElementsMatch(t, protoIDs(late30s), b.late)
	// Five minutes on, the 8m sweep has passed their time.
	h.advance(5 * time.Minute)
	b.until("the 8m sweep", b.swept(1, now.Add(-2*time.Minute)))
	require.ElementsMatch(t, append(protoIDs(late30s), protoIDs(late4m)...), b.late)
	require.EqualValues(t, 7, r.Late.Caught.Load())
	require.GreaterOrEqual(t, time.Duration(r.Late.MaxLatency.Load()), 5*time.Minute, "found at least five minutes after their time")

	// Later sweeps send nothing again: every event was sent once.
	h.advance(10 * time.Minute)
	b.until("both sweeps at the head's floor", func() bool { return b.swept(0, floor)() && b.swept(1, floor)() })
	require.Len(t, b.late, 7)
	require.Len(t, b.head, 300)
	require.Equal(t, floor, b.sweeps[1], "no sweep reads past the head's floor")
}

// TestSweepsReadNothingWhileTheHeadCoversTheRange: on a cluster quieter
// than a page per poll, the head re-reads its only page (and with it every
// late event) on each poll; the sweeps have nothing to read.
func TestSweepsReadNothingWhileTheHeadCoversTheRange(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	g := teleporttest.NewGenerator(8)
	h.srv.Store.Add(g.Events(20, now.Add(-5*time.Minute), 10*time.Second)...)
	set := late.NewSet(0)
	r, collect := h.run(h.lateConfig(set, time.Minute, 8*time.Minute), cursor.Position{WindowStart: now.Add(-6 * time.Minute)})
	collect(20)
	lateOne := g.Events(1, now.Add(-3*time.Minute), 0)
	h.srv.Store.Add(lateOne...)
	got := collect(1)
	require.Equal(t, protoIDs(lateOne), ids(got), "the head's re-read finds it")
	require.Empty(t, lateIDs(got))
	h.advance(20 * time.Minute)
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, r.Late.Read.Load(), "no sweep read anything")
	require.Zero(t, r.Late.Caught.Load())
}

// TestHeadSkipsWhatWasAcknowledgedBeforeARestart: events the set knows as
// acknowledged (from the state file of the previous run) are not sent
// again when the head re-reads them from an older position.
func TestHeadSkipsWhatWasAcknowledgedBeforeARestart(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	evs := teleporttest.NewGenerator(9).Events(50, now.Add(-5*time.Minute), time.Second)
	h.srv.Store.Add(evs...)
	set := late.NewSet(0)
	for _, e := range evs[:30] {
		d, err := e.Decoded()
		require.NoError(t, err)
		ref := late.RefOf(d)
		set.Read(ref)
		set.Acked(ref)
	}
	_, collect := h.run(h.lateConfig(set, time.Minute, 8*time.Minute), cursor.Position{WindowStart: now.Add(-6 * time.Minute)})
	got := collect(20)
	require.Equal(t, protoIDs(evs[30:]), ids(got))
}
