package cursor

import (
	"sync"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/common/acker"
)

// Tracker turns the output's acknowledgements into positions, in publish
// order. Every published event carries, in beat.Event.Private, the
// position (a P) just after it. Some positions follow no event of their own (a
// page that brought only filtered events, the move to the next search
// window); Advance queues them behind the events published before them.
//
// commit is called, in order, with the newest position whose events are
// all acknowledged. It runs on libbeat's ACK goroutine or on the caller of
// Advance, never concurrently.
type Tracker[P comparable] struct {
	mu        sync.Mutex
	published uint64
	acked     uint64
	pending   []pendingPosition[P]
	commit    func(P)
	onACK     func(n int) // told, in order, how many events each ACK covers
}

type pendingPosition[P comparable] struct {
	after uint64 // the number of events published before the position
	pos   P
}

// NewTracker returns a tracker that hands acknowledged positions to commit.
func NewTracker[P comparable](commit func(P)) *Tracker[P] {
	return &Tracker[P]{commit: commit}
}

// EventListener is the pipeline client's ACK listener.
func (t *Tracker[P]) EventListener() beat.EventListener {
	// EventPrivateReporter reports, in order, the Private field of every
	// event that is done, including events dropped by processors.
	return acker.EventPrivateReporter(t.onACKed)
}

// Published records that n events were handed to the pipeline client. It
// must be called before they are published.
func (t *Tracker[P]) Published(n int) {
	t.mu.Lock()
	t.published += uint64(n)
	t.mu.Unlock()
}

// Advance records a position reached after all the events published so
// far; it is committed once they are acknowledged (at once if none is
// pending).
func (t *Tracker[P]) Advance(pos P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.acked == t.published {
		t.commit(pos)
		return
	}
	t.pending = append(t.pending, pendingPosition[P]{after: t.published, pos: pos})
}

// Acked returns the number of events acknowledged so far.
func (t *Tracker[P]) Acked() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked
}

// InFlight returns the number of published events not yet acknowledged.
func (t *Tracker[P]) InFlight() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.published - t.acked
}

func (t *Tracker[P]) onACKed(_ int, data []interface{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acked += uint64(len(data))
	if t.onACK != nil {
		t.onACK(len(data))
	}
	var zero P
	latest, atEnd, before := zero, zero, zero
	for i := len(data) - 1; i >= 0; i-- {
		if p, ok := data[i].(P); ok && p != zero {
			latest = p
			break
		}
	}
	// Positions queued before the last acknowledged event are superseded
	// by it; those queued right after it supersede it.
	n := 0
	for ; n < len(t.pending) && t.pending[n].after <= t.acked; n++ {
		if t.pending[n].after == t.acked {
			atEnd = t.pending[n].pos
		} else {
			before = t.pending[n].pos
		}
	}
	t.pending = t.pending[n:]
	switch {
	case atEnd != zero:
		t.commit(atEnd)
	case latest != zero:
		t.commit(latest)
	case before != zero:
		t.commit(before)
	}
}
