package audit

import (
	"context"
	"sync"
	"time"
)

// Words: a window is the time range one search keeps its `from` for
// (teleportbeat.audit.window, a UTC day by default); a part is the unit a
// backfill reads at once, a piece of a complete window.
//
// A backfill (or a catch-up after an outage) reads complete windows of the
// past. Within a search the pages come one after the other, since each
// page's start key comes with the page before it; so one search is read at
// one page per round trip at best (500 events per 50 ms is 10,000 events/s,
// whatever the output could take). The only way to read faster is to read
// several parts at once, and since events are handed over in log order
// (the output's acknowledgements move one position forward), a part ahead
// of the one being handed over can only read as far as its queue holds
// (prefetch pages). So complete windows are cut into parts of about that
// much: BackfillConcurrency of them are read at once, each part ahead of
// the head is read whole while it waits, and memory stays bounded by
// BackfillConcurrency x Prefetch pages.

// firstPart is the length of the first part of a backfill, before any
// page has told how dense the log is.
const firstPart = time.Hour

// minPart is the shortest part a backfill is cut into (the shortest
// configurable window). Part bounds are whole seconds.
const minPart = time.Minute

// partSizer chooses the length of the next part of a backfill from the
// density of the pages read so far.
type partSizer struct {
	mu       sync.Mutex
	target   float64 // events a part should hold
	min, max time.Duration
	size     time.Duration // 0 until a page has been read
}

func newPartSizer(target int, maxSize time.Duration) *partSizer {
	return &partSizer{target: float64(max(1, target)), min: min(minPart, maxSize), max: maxSize}
}

// observe takes in that events were found over span of audit time. A
// span with no event counts as one event: the next part grows, at most
// eightfold per observation, so that one quiet hour does not make the next
// part a day long.
func (z *partSizer) observe(span time.Duration, events int) {
	if span < 0 {
		return
	}
	size := time.Duration(float64(span) * z.target / float64(max(1, events)))
	size = min(max(size, z.min), z.max)
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.size > 0 {
		size = min(size, 8*z.size)
	}
	z.size = size
}

// next is the length of the next part, and false while nothing has been
// read to size it from.
func (z *partSizer) next() (time.Duration, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.size, z.size > 0
}

// partEnd is the end of a part starting at from that is size
// long: a whole second, never past the window (and so the day) from is in.
func (r *Reader) partEnd(from time.Time, size time.Duration) time.Time {
	end := from.Add(size).Truncate(time.Second)
	if !end.After(from) {
		end = from.Add(time.Second).Truncate(time.Second)
	}
	if whole := r.windowEnd(from); whole.Before(end) {
		return whole
	}
	return end
}

// headEnd is the end of the part a backfill resumes in. A start key is
// only valid for a `to` at or after the one of the search it came from: the
// position's window end, or the whole window for a position saved without
// one (by the open window, or by an earlier version).
func (r *Reader) headEnd(st *readState) time.Time {
	whole := r.windowEnd(st.from)
	switch {
	case !st.to.IsZero() && st.to.After(st.from) && !st.to.After(whole):
		return st.to
	case st.page.startKey != "":
		return whole
	}
	size, ok := r.sizer.next()
	if !ok {
		size = firstPart
	}
	return r.partEnd(st.from, size)
}

// readParts reads the complete windows from st.from up to limit,
// cut into parts, several at once, each by its own goroutine, and forwards
// their batches in part order: the events, and so the positions the output
// acknowledges, stay in order, and a part's progress is committed only
// after every earlier part's. Until the first page has told how dense the
// log is, only the first part is read. Events at a part's
// very end may come again at the start of the next (bounds are inclusive,
// and some backends compare whole seconds); they are dropped on the way.
func (r *Reader) readParts(ctx context.Context, st *readState, limit time.Time, out chan<- Batch) {
	type part struct {
		to    time.Time
		ch    chan readBatch
		carry chan *pageState
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var queue []*part
	next := st.from // where the next part starts
	start := func(ws *readState) {
		w := &part{to: ws.to, ch: make(chan readBatch, max(1, r.cfg.Prefetch)), carry: make(chan *pageState, 1)}
		queue = append(queue, w)
		next = ws.to
		go func() {
			defer close(w.ch)
			w.carry <- r.readPart(wctx, ws, w.ch)
		}()
	}
	// Parts read at once: two to begin with (the head and one ahead), one
	// more each time the publisher starves (await), up to
	// BackfillConcurrency. Where Teleport answers fast, parts ahead are
	// not needed and their queues would only hold memory; where each page
	// takes a round trip of tens of milliseconds, the head is waited for
	// and more parts are read ahead.
	maxParts := max(1, r.cfg.BackfillConcurrency)
	parts := min(2, maxParts)
	r.Stats.BackfillParts.Store(int64(parts))
	topUp := func() {
		for len(queue) < parts && next.Before(limit) && !r.windowEnd(next).After(limit) {
			size, ok := r.sizer.next()
			if !ok {
				return
			}
			start(&readState{from: next, to: r.partEnd(next, size), page: newPageState("", nil), lastTime: st.lastTime})
		}
	}
	start(&readState{from: st.from, to: r.headEnd(st), page: st.page, lastTime: st.lastTime})
	topUp()

	var prevCarry map[string]struct{}
	for len(queue) > 0 {
		w := queue[0]
		for {
			b, ok, starved := await(r, w.ch, out)
			if !ok {
				break
			}
			if starved && parts < maxParts {
				parts++
				r.Stats.BackfillParts.Store(int64(parts))
				topUp()
			}
			if prevCarry != nil {
				n := len(b.Events)
				b = dropCarried(b, prevCarry)
				r.Stats.Events.Add(int64(len(b.Events) - n)) // read twice, counted once
			}
			if len(b.Positions) > 0 {
				st.lastTime = b.Positions[len(b.Positions)-1].LastEventTime
			}
			if !r.send(ctx, out, b) {
				return
			}
			topUp()
		}
		carry := <-w.carry
		if carry == nil || ctx.Err() != nil {
			return // cancelled
		}
		queue = queue[1:]
		st.from, st.to, st.page = w.to, time.Time{}, carry
		prevCarry = carry.doneSet
		topUp()
	}
}

// Waiting reports whether the publisher is waiting for Teleport now
// (during a backfill).
func (r *Reader) Waiting() bool { return r.waiting.Load() }

// defaultStarveAfter is how long the publisher must wait for Teleport
// before more is read at once. Shorter waits are the publisher catching
// up with a reader busy decoding, which more readers would not shorten
// (they share the same CPUs); a round trip to a slow or distant cluster is
// longer.
const defaultStarveAfter = 5 * time.Millisecond

// await takes the next value of ch, and reports whether the publisher
// starved for it: it had to wait at least StarveAfter while out held
// nothing either. (While out still holds batches, the publisher is the
// slower side, and reading more at once would not help.) A wait is counted
// in Stats.Waits as it begins; Waiting reports whether one is under way.
func await[T any](r *Reader, ch <-chan T, out chan<- Batch) (v T, ok, starved bool) {
	select {
	case v, ok = <-ch:
		return v, ok, false
	default:
	}
	idle := len(out) == 0
	start := time.Now()
	r.Stats.Waits.Add(1)
	r.waiting.Store(true)
	v, ok = <-ch
	r.waiting.Store(false)
	return v, ok, ok && idle && time.Since(start) >= r.cfg.StarveAfter
}

// dropCarried removes from b the events the previous part already sent.
func dropCarried(b readBatch, carried map[string]struct{}) readBatch {
	out := readBatch{After: b.After}
	for i, e := range b.Events {
		if _, ok := carried[e.Key()]; ok {
			continue
		}
		out.Events = append(out.Events, e)
		out.Positions = append(out.Positions, b.Positions[i])
	}
	return out
}

// readPart pages through the part [st.from, st.to] of a complete window
// and returns the state to start the next part with (nil when ctx is
// done). Full pages and the whole part tell the sizer how dense the log
// is.
func (r *Reader) readPart(ctx context.Context, st *readState, out chan<- readBatch) *pageState {
	resumed := st.page.startKey != ""
	read := 0
	var prev *pageState // the page before, whose end may be the part's end
	for {
		items, next, res := r.fetch(ctx, st.from, st.to, st.page.startKey)
		switch res {
		case fetchCancelled:
			return nil
		case keyRefused:
			st.dropKey()
			prev = nil
			continue
		}
		read += len(items)
		b, excluded := r.batch(st, items)
		var carry *pageState
		if next != "" {
			if n := len(items); n > 1 && !items[0].Time.IsZero() && !items[n-1].Time.IsZero() {
				r.sizer.observe(items[n-1].Time.Sub(items[0].Time), n-1)
			}
			prev, st.page = st.page, newPageState(next, nil)
			if n := len(items); n > 0 && !items[n-1].Time.IsZero() {
				st.page.floor = items[n-1].Time
			} else {
				st.page.floor = prev.floor
			}
			st.page.before = prev.carry(st.page.floor)
			b.After = st.position()
		} else {
			if !resumed {
				r.sizer.observe(st.to.Sub(st.from), read)
			}
			// The events at the part's end are on the last page, or on
			// the one before when the part ended with a full page (the
			// last is then empty, or holds only what came later).
			carry = st.page.carry(st.to.Add(-time.Second))
			if prev != nil {
				carry.merge(prev.carry(st.to.Add(-time.Second)))
			}
			b.After = carry.position(st.to, time.Time{}, st.lastTime)
		}
		r.log.Debugw("Read audit page", "from", st.from, "to", st.to, "new_events", len(b.Events), "excluded", excluded, "page_size", len(items), "next_page", next != "")
		select { // to readParts, which hands it over in the parts' order
		case out <- b:
		case <-ctx.Done():
			return nil
		}
		if carry != nil {
			return carry
		}
	}
}
