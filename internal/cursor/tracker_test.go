package cursor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
)

type commits struct{ got []*Position }

func (c *commits) commit(p *Position) { c.got = append(c.got, p) }

func (c *commits) last(t *testing.T) *Position {
	t.Helper()
	require.NotEmpty(t, c.got)
	return c.got[len(c.got)-1]
}

func pos(key string) *Position { return &Position{WindowStart: time.Unix(0, 0), StartKey: key} }

// publish feeds events with positions through the tracker's listener as
// the pipeline client does.
func publish(tr *Tracker[*Position], l beat.EventListener, ps ...*Position) {
	tr.Published(len(ps))
	for _, p := range ps {
		l.AddEvent(beat.Event{Private: p}, true)
	}
}

func TestTrackerCommitsTheLastAcknowledgedPosition(t *testing.T) {
	var c commits
	tr := NewTracker(c.commit)
	l := tr.EventListener()
	p1, p2, p3 := pos("1"), pos("2"), pos("3")
	publish(tr, l, p1, p2, p3)
	require.Empty(t, c.got, "nothing is committed before an ACK")
	l.ACKEvents(2)
	require.Same(t, p2, c.last(t))
	l.ACKEvents(1)
	require.Same(t, p3, c.last(t))
	require.Zero(t, tr.InFlight())
}

func TestTrackerAdvanceWaitsForEarlierEvents(t *testing.T) {
	var c commits
	tr := NewTracker(c.commit)
	l := tr.EventListener()

	idle := pos("idle")
	tr.Advance(idle)
	require.Same(t, idle, c.last(t), "nothing in flight: committed at once")

	p1, p2 := pos("1"), pos("2")
	publish(tr, l, p1, p2)
	skip := pos("after-2")
	tr.Advance(skip)
	p3 := pos("3")
	publish(tr, l, p3)
	window := pos("after-3")
	tr.Advance(window)

	l.ACKEvents(1)
	require.Same(t, p1, c.last(t))
	l.ACKEvents(1)
	require.Same(t, skip, c.last(t), "a position queued right after the last acknowledged event supersedes it")
	l.ACKEvents(1)
	require.Same(t, window, c.last(t))
	n := len(c.got)
	l.ACKEvents(0)
	require.Len(t, c.got, n)
}

func TestTrackerCountsDroppedEvents(t *testing.T) {
	var c commits
	tr := NewTracker(c.commit)
	l := tr.EventListener()
	p1, p2, p3 := pos("1"), pos("2"), pos("3")
	tr.Published(3)
	l.AddEvent(beat.Event{Private: p1}, true)
	l.AddEvent(beat.Event{Private: p2}, false) // dropped by a processor
	l.AddEvent(beat.Event{Private: p3}, true)
	after := pos("after")
	tr.Advance(after)
	l.ACKEvents(1)
	require.Same(t, p2, c.last(t), "the dropped event counts as done")
	l.ACKEvents(1)
	require.Same(t, after, c.last(t))
}
