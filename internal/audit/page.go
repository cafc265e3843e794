package audit

import (
	"slices"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
)

// readState is where the reader is: the window's bounds, the page being
// read in it and the time of the newest event read.
type readState struct {
	from     time.Time
	to       time.Time // end of a closed window read in parts; zero for the open window
	page     *pageState
	lastTime time.Time
	export   *cursor.ExportProgress // progress through the day at from, when exported
	wait     time.Duration          // the wait before the next read of the log's end
	// lastFound is when a read of the log's end last found events.
	lastFound time.Time
}

// batch turns a page into a batch: the events not seen before on the page
// and not excluded, each with the position after it.
func (r *Reader) batch(st *readState, items []*event.Event) (readBatch, int) {
	var b readBatch
	excluded := 0
	for _, it := range items {
		key, ok := st.page.see(it)
		if !ok {
			continue
		}
		if !it.Time.IsZero() {
			st.lastTime = it.Time
		}
		if _, ex := r.exclude[it.Type]; ex {
			st.page.markDone(key)
			excluded++
			r.track(it, true)
			continue
		}
		if !r.track(it, false) {
			// The late-event set knows it: a sweep sent it, the backfill
			// part after this one read it first (parts overlap at their
			// bound and are read at once), or it was acknowledged before
			// a restart. It is not sent again, and not done on this page
			// either: whoever sent it commits it, so neither this page's
			// position nor what it carries to the next part may claim it
			// (the next part would drop it as sent), and after a restart
			// the set tells whether it was acknowledged.
			if len(b.Events) == 0 {
				excluded++ // the position after it must still be recorded
			} else {
				b.Positions[len(b.Positions)-1] = st.position()
			}
			continue
		}
		st.page.markDone(key)
		b.Events = append(b.Events, it)
		b.Positions = append(b.Positions, st.position())
	}
	r.Stats.Events.Add(int64(len(b.Events)))
	r.Stats.Excluded.Add(int64(excluded))
	r.reportShared(b.Events)
	return b, excluded
}

// reportShared warns about each new event that shares its uid with another,
// different event: Elasticsearch would have answered 409 (a duplicate) to
// the second and kept only the first.
func (r *Reader) reportShared(evs []*event.Event) {
	for _, e := range evs {
		if uid := e.SharedUID(); uid != "" {
			r.Stats.UIDCollisions.Add(1)
			r.log.Warnw("Two different audit events have the same uid; this one is stored under its uid and a hash of its content", "event_id", uid, "stored_as", e.Key(), "event_type", e.Type, "event_time", e.Time)
		}
	}
}

// pageState is what the reader knows of the page it reads: its start key
// and which of its events are done.
//
// An event is known by its id (the uid, or the hash Teleport computes for
// events without one). Distinct events may share a uid (Teleport's own
// fixtures do), so when a page holds a second, different event with an id
// already seen, that one is known by its id and a hash of its content. The
// events of the page are kept (until the page changes) to tell a re-read
// of the same event from a different one.
type pageState struct {
	startKey string
	// floor is the time of the event the start key follows (the window's
	// start for its first page): the page holds no event before it.
	floor time.Time
	// tailRead is set once the page was read to the end of the log: new
	// events on a read after it appeared since.
	tailRead bool
	// before holds the events of the page before that are done and timed
	// at the floor: read again if the start key is refused (dropKey).
	before  *pageState
	done    []string
	doneSet map[string]struct{}
	byID    map[string][]*event.Event
}

func newPageState(startKey string, done []string) *pageState {
	p := &pageState{
		startKey: startKey,
		done:     slices.Clone(done),
		doneSet:  make(map[string]struct{}, len(done)),
		byID:     make(map[string][]*event.Event),
	}
	for _, k := range done {
		p.doneSet[k] = struct{}{}
	}
	return p
}

// see records it and reports whether it is new (not read before, and not
// done before a restart), with the key it is known by. A second, different
// event with the uid of one already on the page is marked
// (event.ShareUID): it is known and stored by its uid and a hash of its
// content. It is not done until markDone.
func (p *pageState) see(it *event.Event) (string, bool) {
	id := it.Key()
	if uid := it.SharedUID(); uid != "" {
		id = uid // already marked (a read of the page before)
	}
	prev := p.byID[id]
	for _, q := range prev {
		if event.Same(q, it) {
			return "", false // read again
		}
	}
	key := id
	if len(prev) > 0 {
		key = id + "#" + contentHash(it)
		it.ShareUID(key)
	}
	p.byID[id] = append(prev, it)
	if _, ok := p.doneSet[key]; ok {
		return "", false // done before a restart
	}
	return key, true
}

// markDone records that the event known by key is done on this page.
func (p *pageState) markDone(key string) {
	p.doneSet[key] = struct{}{}
	p.done = append(p.done, key)
}

// track records in the late-event set that the head read it, and reports
// whether it is new to the set (false: a sweep sent it already, or it was
// acknowledged before a restart). done marks it acknowledged at once (an
// event that is not sent).
func (r *Reader) track(it *event.Event, done bool) bool {
	set := r.cfg.Late.Set
	if set == nil || it.Time.IsZero() {
		return true
	}
	ref, seen := r.readLate(it)
	if done {
		set.Acked(ref)
	}
	return seen == shipped.New
}

// readLate records in the late-event set that it was read. An event whose
// uid the set knows for another event is marked (event.ShareUID: known and
// stored by its uid and a hash of its content) and recorded under that key.
func (r *Reader) readLate(it *event.Event) (shipped.Ref, shipped.Seen) {
	set := r.cfg.Late.Set
	ref := shipped.RefOf(it)
	seen := set.Read(ref)
	if seen == shipped.OtherContent {
		it.ShareUID(it.Key() + "#" + contentHash(it))
		ref = shipped.RefOf(it)
		seen = set.Read(ref)
	}
	return ref, seen
}

// position is the position after the events of the page done so far.
func (st *readState) position() *cursor.Position {
	return st.page.position(st.from, st.to, st.lastTime)
}

// position is the position after the events done so far, in the window
// [from, to] (to is zero for the open window).
func (p *pageState) position(from, to, lastTime time.Time) *cursor.Position {
	return &cursor.Position{
		WindowStart:   from,
		WindowEnd:     to,
		StartKey:      p.startKey,
		Done:          p.done[:len(p.done):len(p.done)],
		LastEventTime: lastTime,
	}
}

// carry starts the first page of the next window, keeping as done the
// events of this page at or after t.
func (p *pageState) carry(t time.Time) *pageState {
	next := newPageState("", nil)
	for id, evs := range p.byID {
		for i, it := range evs {
			if it.Time.Before(t) {
				continue
			}
			key := id
			if i > 0 {
				key = id + "#" + contentHash(it)
			}
			if _, ok := p.doneSet[key]; !ok {
				continue
			}
			next.byID[id] = append(next.byID[id], it)
			next.doneSet[key] = struct{}{}
			next.done = append(next.done, key)
		}
	}
	slices.Sort(next.done)
	return next
}

// merge adds to p the events of q (carried from the page before).
func (p *pageState) merge(q *pageState) {
	for id, evs := range q.byID {
		p.byID[id] = append(p.byID[id], evs...)
	}
	for _, k := range q.done {
		if _, ok := p.doneSet[k]; !ok {
			p.doneSet[k] = struct{}{}
			p.done = append(p.done, k)
		}
	}
	slices.Sort(p.done)
}

// contentHash tells apart distinct events that share an id.
func contentHash(it *event.Event) string {
	return it.ContentHash()[:16]
}
