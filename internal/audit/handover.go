package audit

import (
	"context"
	"sync"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
)

// Batch is what the reader hands to the publisher: events, each with the
// complete position to commit once it is acknowledged (sweep cursors
// included), and Advance, when set, the position reached after them that
// no event carries (a new page or window, events dropped by the type
// filter, sweep cursors that moved). The publisher publishes the events
// with their positions, then advances to Advance: it need not know where
// the events came from.
type Batch struct {
	Events    []*event.Event
	Positions []*cursor.Position
	Advance   *cursor.Position
}

// readBatch is what the reader's parts find: the head's events with the
// position after each (and After, the position after the page when it
// differs from the last event's), or a sweep's late events, which have no
// position of their own (Late), with the sweep cursors reached after them
// (Sweeps). handover finishes them into Batches.
type readBatch struct {
	Events    []*event.Event
	Positions []*cursor.Position
	After     *cursor.Position

	Late   bool
	Sweeps []time.Time
}

// handover finishes the reader's batches in the order they are handed
// over, which is the order they are published and acknowledged in:
//
//   - A late event is published at the position of the head's last event
//     (cur): committing it moves nothing, and the event is in the
//     late-event set until it is acknowledged, so a restart before that
//     finds it again.
//   - Sweep cursors ride on the positions that follow them: a position
//     with none gets the current ones; one with some keeps them (older
//     cursors only make a restart sweep a little more). No position is
//     changed once it is handed over.
//   - Every event handed over is queued in acks (in this order), and
//     Reader.Acked marks it acknowledged in the late-event set.
type handover struct {
	mu   sync.Mutex // held while a batch is handed over: the head and the sweeps hand over concurrently
	cur  *cursor.Position
	acks *shipped.Acks // nil without sweeps
}

// send finishes b and hands it to out; false when ctx ends first (what
// was not handed over is read again, or swept again, after a restart).
func (r *Reader) send(ctx context.Context, out chan<- Batch, b readBatch) bool {
	if len(b.Events) == 0 && b.After == nil && b.Sweeps == nil {
		return true
	}
	h := &r.handover
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.cur
	fin := h.finish(b)
	select {
	case out <- fin:
		if h.acks != nil {
			for _, e := range fin.Events {
				var ref shipped.Ref
				if !e.Time.IsZero() {
					ref = shipped.RefOf(e)
				}
				h.acks.Published(ref)
			}
		}
		return true
	case <-ctx.Done():
		h.cur = cur // not handed over
		return false
	}
}

// finish gives b's events their complete positions and moves cur.
func (h *handover) finish(b readBatch) Batch {
	fin := Batch{Events: b.Events, Positions: b.Positions}
	if b.Late {
		fin.Positions = make([]*cursor.Position, len(b.Events))
		for i := range fin.Positions {
			fin.Positions[i] = h.cur
		}
	} else {
		for _, pos := range b.Positions {
			h.withSweeps(pos)
		}
		if n := len(b.Positions); n > 0 {
			h.cur = b.Positions[n-1]
		}
	}
	switch {
	case b.Sweeps != nil:
		next := *h.cur
		next.Sweeps = b.Sweeps
		h.cur = &next
		fin.Advance = h.cur
	case b.After != nil:
		h.withSweeps(b.After)
		h.cur = b.After
		fin.Advance = b.After
	}
	return fin
}

// withSweeps gives pos the current sweep cursors, unless it has some.
func (h *handover) withSweeps(pos *cursor.Position) {
	if pos.Sweeps == nil && h.cur != nil && h.cur.Sweeps != nil {
		pos.Sweeps = h.cur.Sweeps
	}
}

// Acked marks the next n events handed over acknowledged by the output
// (libbeat acknowledges in publish order): the late-event set forgets to
// look for them, and the record of shipped events gets them.
func (r *Reader) Acked(n int) {
	if r.handover.acks != nil {
		r.handover.acks.Acked(n)
	}
}
