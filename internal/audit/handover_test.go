package audit

import (
	"context"
	"testing"
	"time"

	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestHandoverGivesEveryEventItsCompletePosition hands over what the
// reader's parts find (the sweeps' first word, head events with a position
// each, late events with new sweep cursors, a position without events) and
// checks the finished batches: late events at the head's last position,
// sweep cursors riding on the positions after them and never changing one
// handed over; then that Acked marks the events acknowledged in the
// late-event set, in the order handed over.
func TestHandoverGivesEveryEventItsCompletePosition(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	set := shipped.NewSet(0)
	r := NewReader(Config{Late: LateConfig{Ages: []time.Duration{time.Minute}, Set: set, Lag: &Lag{}}}, nil, logptest.NewTestingLogger(t, ""))
	start := cursor.Position{WindowStart: t0.Add(-time.Hour)}
	r.handover.cur = &start
	out := make(chan Batch, 10)
	ctx := context.Background()

	var evs []*event.Event
	for _, e := range teleporttest.NewGenerator(11).Events(5, t0.Add(-10*time.Minute), time.Second) {
		d, err := e.Decoded()
		require.NoError(t, err)
		evs = append(evs, d)
		set.Read(shipped.RefOf(d)) // as the reader does
	}
	pos := func(key string) *cursor.Position {
		return &cursor.Position{WindowStart: start.WindowStart, StartKey: key}
	}
	s0 := []time.Time{t0.Add(-20 * time.Minute)}
	s1 := []time.Time{t0.Add(-15 * time.Minute)}
	p1, p2, p3, p4, after := pos("p1"), pos("p2"), pos("p3"), pos("p4"), pos("after")

	require.True(t, r.send(ctx, out, readBatch{Sweeps: s0})) // the sweeper's first word
	require.True(t, r.send(ctx, out, readBatch{Events: evs[:2], Positions: []*cursor.Position{p1, p2}}))
	require.True(t, r.send(ctx, out, readBatch{Events: evs[2:3], Late: true, Sweeps: s1}))
	require.True(t, r.send(ctx, out, readBatch{Events: evs[3:5], Positions: []*cursor.Position{p3, p4}}))
	require.True(t, r.send(ctx, out, readBatch{After: after}))
	require.True(t, r.send(ctx, out, readBatch{}), "nothing to hand over")
	require.Len(t, out, 5)

	b := <-out
	require.Empty(t, b.Events)
	require.Equal(t, s0, b.Advance.Sweeps)
	require.Equal(t, start.WindowStart, b.Advance.WindowStart, "the sweep cursors ride on the start position")
	require.Nil(t, start.Sweeps, "the start position is not changed")

	b = <-out
	require.Equal(t, []*cursor.Position{p1, p2}, b.Positions)
	require.Nil(t, b.Advance)
	require.Equal(t, s0, p1.Sweeps, "head positions carry the sweep cursors of their time")

	b = <-out
	require.Equal(t, evs[2:3], b.Events)
	require.Same(t, p2, b.Positions[0], "a late event is published at the head's last position")
	require.Equal(t, "p2", b.Advance.StartKey)
	require.Equal(t, s1, b.Advance.Sweeps, "the new sweep cursors follow it")
	require.Equal(t, s0, p2.Sweeps, "p2 was handed over: not changed")

	b = <-out
	require.Equal(t, s1, p3.Sweeps)
	require.Equal(t, s1, p4.Sweeps)
	b = <-out
	require.Same(t, after, b.Advance)
	require.Equal(t, s1, after.Sweeps)

	// Acknowledged in the order handed over: the first three only.
	r.Acked(3)
	restored := shipped.NewSet(0)
	require.NoError(t, restored.UnmarshalBinary(set.Encoded()))
	for i, e := range evs {
		require.Equal(t, i < 3, restored.Has(shipped.RefOf(e)), "%d %s: acknowledged events survive a restart, pending ones do not", i, e.Key())
	}
}

// TestHandoverThatIsCancelledLeavesNoTrace: a batch not handed over
// (ctx ended) neither moves the position the next one builds on nor
// queues acknowledgements.
func TestHandoverThatIsCancelledLeavesNoTrace(t *testing.T) {
	set := shipped.NewSet(0)
	r := NewReader(Config{Late: LateConfig{Ages: []time.Duration{time.Minute}, Set: set, Lag: &Lag{}}}, nil, logptest.NewTestingLogger(t, ""))
	start := cursor.Position{WindowStart: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	r.handover.cur = &start
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	full := make(chan Batch) // nobody reads
	require.False(t, r.send(ctx, full, readBatch{After: &cursor.Position{StartKey: "lost"}}))
	require.Same(t, &start, r.handover.cur)

	out := make(chan Batch, 1)
	late1 := teleporttest.NewGenerator(3).Events(1, start.WindowStart, time.Second)[0]
	d, err := late1.Decoded()
	require.NoError(t, err)
	require.True(t, r.send(context.Background(), out, readBatch{Events: []*event.Event{d}, Late: true}))
	require.Same(t, &start, (<-out).Positions[0], "published at the position before the cancelled batch")
}
