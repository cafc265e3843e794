package audit

import (
	"context"
	"errors"
	apidefaults "github.com/gravitational/teleport/api/defaults"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/gravitational/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gravitational/teleport/api/types"

	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/retry"
)

// Searcher is the audit search of teleport/api's client, with the events
// decoded by package event (AuditLog).
type Searcher interface {
	SearchUnstructuredEvents(ctx context.Context, fromUTC, toUTC time.Time, namespace string, eventTypes []string, limit int, order types.EventOrder, startKey string) ([]*event.Event, string, error)
}

// Config configures the audit reader.
type Config struct {
	EventTypes        []string
	ExcludeEventTypes []string
	BatchSize         int
	PollInterval      time.Duration
	// PollIntervalMin is the wait after a read of the log's end that found
	// new events; each read that finds none doubles it, up to
	// PollInterval (the idle rate). 0: PollInterval always.
	PollIntervalMin time.Duration
	// onWait, for tests, sees every wait chosen at the log's end.
	onWait       func(time.Duration)
	Window       time.Duration
	SafetyMargin time.Duration
	BackoffInit  time.Duration
	BackoffMax   time.Duration
	// BackfillConcurrency is how many complete windows are read at once.
	BackfillConcurrency int
	// Prefetch is how many pages each window reader reads ahead.
	Prefetch int
	// Export reads complete past days with Teleport's export API where the
	// cluster offers it (BackfillConcurrency chunks at once), and with
	// searches where it does not.
	Export bool
	// StarveAfter is how long the publisher must wait for Teleport during a
	// backfill before more parts or chunks are read at once (default 5ms).
	StarveAfter time.Duration
	// Late configures the sweeps that catch events that become visible
	// after the head has passed their time (sweep.go).
	Late LateConfig
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Observe, when set, is told the outcome of every search (nil: it
	// worked): the beat's health follows it.
	Observe func(err error)
}

// Stats are the reader's counters.
type Stats struct {
	Pages        atomic.Int64 // searches answered
	Events       atomic.Int64 // new events read
	Excluded     atomic.Int64 // events dropped by exclude_event_types
	SearchErrors atomic.Int64 // failed searches
	SearchNanos  atomic.Int64 // time spent in successful searches
	ExportChunks atomic.Int64 // export chunks read to their end
	ExportErrors atomic.Int64 // failed export listings and streams
	// UIDCollisions counts events read that share their uid with another,
	// different event.
	UIDCollisions atomic.Int64
	// BackfillParts is how many parts of a search backfill are read at
	// once, after the last growth (0 before any backfill).
	BackfillParts atomic.Int64
	// ExportReaders is how many export chunks are read at once, after the
	// last growth (0 before any export).
	ExportReaders atomic.Int64
	// Waits counts the times the publisher had to wait for Teleport during
	// a backfill (nothing read ahead).
	Waits atomic.Int64
	// KeysRefused counts start keys Teleport refused (read again without).
	KeysRefused atomic.Int64
	// WaitingForLag is true while reading waits for the first measurement
	// of Teleport's clock (the reader is within unmeasuredSkew of now).
	WaitingForLag atomic.Bool
	// PollWait is the current wait between reads of the log's end
	// (nanoseconds; 0 while not caught up).
	PollWait atomic.Int64
}

// Reader pages through the audit log with SearchUnstructuredEvents.
//
// How it keeps its place, and why. Teleport's audit backends differ:
// DynamoDB's start key is a query checkpoint (date, index key, sub-page
// event hash) that is only valid while the search's `from` is not after
// the checkpoint's time; Athena's is a keyset (event time, uid); the file
// backend's is the uid of the last event, valid only while that event is
// inside [from, to]. All of them return a next-page key only when a page
// was cut (by the limit or at about 1 MiB), never for the last, partial
// page. So, like Teleport's event handler, the reader:
//   - searches one window [from, to] at a time, with from fixed while the
//     window is read, so every start key stays valid;
//   - re-reads the last page with the same start key when it polls, and
//     skips the events of that page it already handled (by id, not by
//     position: an event that lands late inside the page is still sent);
//   - moves to the next window only when the current one is complete.
//
// Late events: a backend makes some events searchable after their time
// (Athena batches events for up to a minute before they can be queried;
// DynamoDB's time index is eventually consistent; events are emitted by
// nodes through a buffered stream). An event that appears behind the
// current page's start would never be read, so the window ends
// SafetyMargin behind now.
type Reader struct {
	cfg       Config
	search    func(ctx context.Context) (Searcher, error)
	log       *logp.Logger
	include   map[string]struct{} // event_types, applied here to exported events
	exclude   map[string]struct{}
	Stats     Stats
	caughtUp  atomic.Bool
	noExport  atomic.Bool // the cluster answered that it has no export API
	sizer     *partSizer
	floor     headFloor    // the head's page floor, for the sweeps
	warnedLag atomic.Int64 // the lag last said (ns)
	// warnedAhead is how far ahead Teleport's events were last said to be (ns).
	warnedAhead atomic.Int64
	waiting     atomic.Bool // the publisher waits for Teleport (await)
	probeMu     sync.Mutex
	lastNewest  string // key of the newest event at the last look (probeLag)
	// Late are the sweeps' counters.
	Late LateStats
	// handover finishes batches into complete positions (handover.go).
	handover handover
}

// NewReader returns a reader that gets its Searcher from search
// (which may fail while Teleport is unreachable; it is retried).
func NewReader(cfg Config, search func(ctx context.Context) (Searcher, error), log *logp.Logger) *Reader {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StarveAfter <= 0 {
		cfg.StarveAfter = defaultStarveAfter
	}
	set := func(types []string) map[string]struct{} {
		m := make(map[string]struct{}, len(types))
		for _, t := range types {
			m[t] = struct{}{}
		}
		return m
	}
	r := &Reader{
		cfg: cfg, search: search, log: log,
		include: set(cfg.EventTypes), exclude: set(cfg.ExcludeEventTypes),
		// A window ahead of the one handed over is read whole into its
		// queue when it holds about Prefetch pages (backfill.go).
		sizer: newPartSizer(max(1, cfg.Prefetch)*max(1, cfg.BatchSize), cfg.Window),
	}
	if cfg.Late.Set != nil {
		r.handover.acks = shipped.NewAcks(cfg.Late.Set, cfg.Late.Record, func(err error) {
			log.Warnw("The record of shipped events cannot be written: the recheck may send some of them again (Elasticsearch stores each uid once)", "error", err)
		})
	}
	return r
}

// CaughtUp reports whether the last search found the reader at the end of
// the log.
func (r *Reader) CaughtUp() bool { return r.caughtUp.Load() }

// Run reads from pos until ctx is done, sending batches to out. Every
// event sent must be published, in the order sent, and its
// acknowledgement reported with Acked.
func (r *Reader) Run(ctx context.Context, pos cursor.Position, out chan<- Batch) {
	r.handover.mu.Lock()
	r.handover.cur = &pos
	r.handover.mu.Unlock()
	st := &readState{from: pos.WindowStart, to: pos.WindowEnd, page: newPageState(pos.StartKey, pos.Done), lastTime: pos.LastEventTime, export: pos.Export}
	// The page floor of a resumed page is not stored: the newest event
	// acknowledged is at or after it (a later floor only makes sweeps read
	// a little more).
	st.page.floor = st.from
	if st.page.startKey != "" && st.lastTime.After(st.from) {
		st.page.floor = st.lastTime
	}
	r.floor.set(st.from)
	// The lag is measured while reading starts (it takes two looks at
	// Teleport's newest event with a new event between them): windows
	// that closed more than unmeasuredSkew ago are read at once, and so is
	// the open window; a window that ended within unmeasuredSkew waits for
	// the measurement before it closes, and so do the sweeps, which age by
	// it.
	r.pruneBeforeSweeps(pos.Sweeps, st.page.floor)
	var wg sync.WaitGroup
	defer wg.Wait()
	measured := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(measured)
		r.measureLag(ctx)
	}()
	wg.Add(1)
	go func(floor time.Time) {
		defer wg.Done()
		select {
		case <-measured:
		case <-ctx.Done():
			return
		}
		if sw := r.newSweeper(pos.Sweeps, floor); sw != nil {
			sw.run(ctx, out)
		}
	}(st.page.floor)
	for ctx.Err() == nil {
		now := r.cfg.Now().UTC()
		// Windows close on Teleport's clock as its events show it, not on
		// this host's alone (Lag).
		limit := r.reference(now).Add(-r.cfg.SafetyMargin)
		select {
		case <-measured:
		default:
			var wait bool
			if limit, wait = r.unmeasuredLimit(now, st, limit); wait {
				r.Stats.WaitingForLag.Store(true)
				select {
				case <-measured:
				case <-ctx.Done():
				}
				r.Stats.WaitingForLag.Store(false)
				continue
			}
		}
		if r.canExport(st, limit) {
			if !r.exportDay(ctx, st, out) {
				return
			}
			continue
		}
		if st.export != nil {
			// Export progress, but the day is not to be exported (the
			// export API was turned off): search the day from its start.
			r.log.Infow("Reading a partly exported day again with searches", "day", st.from.Format(time.DateOnly))
			st.export = nil
		}
		if !r.windowEnd(st.from).After(limit) {
			// Complete windows behind the safety margin: a backfill, or
			// a catch-up after an outage. With the export API, only up
			// to the next UTC midnight, where exporting takes over.
			r.caughtUp.Store(false)
			r.floor.set(st.from)
			if r.cfg.Export && !r.noExport.Load() {
				if midnight := st.from.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour); midnight.Before(limit) {
					limit = midnight
				}
			}
			r.readParts(ctx, st, limit, out)
			continue
		}
		if limit.Before(st.from) {
			// The window has not opened yet (a start time in the future,
			// or the first run, within the safety margin).
			r.caughtUp.Store(true)
			if !retry.Sleep(ctx, r.cfg.PollInterval) {
				return
			}
			continue
		}
		// The open window is read up to now (minus the safety margin), but
		// not past its end: it closes on the reference clock.
		to := now.Add(-r.cfg.SafetyMargin)
		if end := r.windowEnd(st.from); end.Before(to) {
			to = end
		}

		if to.Before(st.from) {
			to = st.from
		}
		if !r.readOpenWindow(ctx, st, to, out) {
			return
		}
	}
}

// unmeasuredLimit bounds the read limit while Teleport's clock is not
// measured yet. wait says the window at st must wait for the measurement:
// it ended within unmeasuredSkew, and Teleport's clock may not have
// reached its end.
func (r *Reader) unmeasuredLimit(now time.Time, st *readState, limit time.Time) (time.Time, bool) {
	bound := now.Add(-unmeasuredSkew - r.cfg.SafetyMargin)
	end := r.windowEnd(st.from)
	switch {
	case !end.After(bound):
		// A window that closed over unmeasuredSkew ago by this host's
		// clock: closed by Teleport's too.
		if limit.After(bound) {
			limit = bound
		}
		return limit, false
	case end.After(now.Add(-r.cfg.SafetyMargin)):
		// The open window: read up to now at once (reading it closes
		// nothing; a quiet cluster's first events are not held back by
		// the measurement). It closes once the lag is known.
		return limit, false
	}
	return limit, true
}

// exportDay reads the complete past day at st in bulk. It reports false
// when ctx is done.
func (r *Reader) exportDay(ctx context.Context, st *readState, out chan<- Batch) bool {
	r.caughtUp.Store(false)
	r.floor.set(st.from)
	switch r.readExportDay(ctx, st, out) {
	case exportCancelled:
		return false
	case exportUnsupported:
		if st.export != nil {
			// Progress made with the export API cannot be resumed by
			// search: read the day again from its start (Elasticsearch
			// drops the replays by _id).
			r.log.Warnw("Export progress cannot be resumed without the export API; reading the day again with searches", "day", st.from.Format(time.DateOnly))
			st.export = nil
		}
	}
	return true
}

// unmeasuredSkew is how far behind this host's clock Teleport's may be, at
// most, for the reader to go on before the lag is measured: a backfill
// starts at once, without waiting for the two looks at Teleport's newest
// event.
const unmeasuredSkew = time.Hour

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

// windowEnd is the end of the window that starts at from: Window later, but
// never past the next UTC midnight, so that windows follow the days the
// backends partition events by.
func (r *Reader) windowEnd(from time.Time) time.Time {
	end := from.Add(r.cfg.Window)
	if midnight := from.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour); midnight.Before(end) {
		end = midnight
	}
	return end
}

// readOpenWindow reads one page of the window that ends at limit (now minus
// the safety margin), and waits poll_interval when that was the end of the
// log. It reports false when ctx is done.
func (r *Reader) readOpenWindow(ctx context.Context, st *readState, limit time.Time, out chan<- Batch) bool {
	st.to = time.Time{} // the open window's end moves with the clock
	if st.page.floor.Before(st.from) {
		st.page.floor = st.from // the first page of a window
	}
	r.floor.set(st.page.floor)
	items, next, res := r.fetch(ctx, st.from, limit, st.page.startKey)
	switch res {
	case fetchCancelled:
		return false
	case keyRefused:
		st.dropKey()
		return true
	}
	readAt := r.cfg.Now()
	b, excluded := r.batch(st, items)
	if lag := r.cfg.Late.Lag; lag != nil && len(b.Events) > 0 && next == "" && st.page.tailRead {
		// New events on a re-read of the last page: the newest was
		// written since the read before, within a poll interval of this
		// one. (The first read of a page after a start or a new page
		// finds events of any age: it says nothing of the lag.)
		newest := b.Events[0].Time
		for _, e := range b.Events[1:] {
			if e.Time.After(newest) {
				newest = e.Time
			}
		}
		lag.Observe(readAt, newest)
		r.reportLag(readAt)
	}
	caughtUp := false
	switch {
	case next != "":
		floor := st.page.floor
		if n := len(items); n > 0 && !items[n-1].Time.IsZero() {
			floor = items[n-1].Time
		}
		prev := st.page
		st.page = newPageState(next, nil)
		st.page.floor = floor
		st.page.before = prev.carry(floor)
		b.After = st.position()
	default:
		caughtUp = true
		st.page.tailRead = true
		if excluded > 0 {
			b.After = st.position()
		}
	}
	r.caughtUp.Store(caughtUp)
	r.log.Debugw("Read audit page", "from", st.from, "to", limit, "new_events", len(b.Events), "excluded", excluded, "page_size", len(items), "next_page", next != "", "caught_up", caughtUp)
	if !r.send(ctx, out, b) {
		return false
	}
	if !caughtUp {
		return true
	}
	found := len(b.Events)+excluded > 0
	if found {
		st.lastFound = readAt
	}
	quietFor := time.Duration(math.MaxInt64)
	if !st.lastFound.IsZero() {
		quietFor = readAt.Sub(st.lastFound)
	}
	st.wait = r.nextWait(st.wait, found, quietFor)
	r.Stats.PollWait.Store(int64(st.wait))
	if r.cfg.onWait != nil {
		r.cfg.onWait(st.wait)
	}
	return retry.Sleep(ctx, st.wait)
}

// nextWait is the wait before the next read of the log's end: polling
// follows the traffic. After a read that found new events, the next comes
// PollIntervalMin later (events keep coming: they are read within a
// fraction of a second); each read that finds nothing doubles the wait,
// up to recentPollCap while events came within recentActivity (a backend
// that makes events searchable in batches, as Athena does every minute,
// has its batches read within two seconds), and up to PollInterval once
// the cluster has been quiet longer (it is searched no more often than
// every PollInterval). quietFor is how long ago the last events were found.
func (r *Reader) nextWait(prev time.Duration, found bool, quietFor time.Duration) time.Duration {
	lo, hi := r.cfg.PollIntervalMin, r.cfg.PollInterval
	if lo <= 0 || lo >= hi {
		return hi // no minimum, or one at or above poll_interval
	}
	if found || prev <= 0 {
		return lo
	}
	if quietFor < recentActivity {
		hi = min(hi, max(lo, recentPollCap))
	}
	return min(2*prev, hi)
}

// recentPollCap bounds the wait while events came within recentActivity.
const (
	recentPollCap  = 2 * time.Second
	recentActivity = 5 * time.Minute
)

// lagWarnStep is how much the measured lag must change to be said again.
const lagWarnStep = 30 * time.Second

// reportLag says when Teleport's newest events lag behind this host's
// clock by more than the noise, and when that changes.
func (r *Reader) reportLag(now time.Time) {
	behind := r.cfg.Late.Lag.Behind(now)
	prev := time.Duration(r.warnedLag.Load())
	if d := behind - prev; d > -lagWarnStep && d < lagWarnStep {
		return
	}
	r.warnedLag.Store(int64(behind))
	if behind == 0 {
		r.log.Infow("Teleport's newest events are no longer behind this host's clock", "was_behind", prev.Round(time.Second).String())
		return
	}
	r.log.Warnw("Teleport's newest events are behind this host's clock: Teleport's clock runs behind, or its audit backend makes events searchable late. Windows close and sweeps age by Teleport's clock as measured; check the clocks (NTP) of Teleport's hosts and this one",
		"behind", behind.Round(time.Second).String(), "late_events_max_delay", r.maxDelay().String())
	if md := r.maxDelay(); md > 0 && behind > md {
		r.log.Warnw("Teleport's events lag by more than teleportbeat.audit.late_events.max_delay: events around midnight may be caught late or, when they are later than the lag plus max_delay, not at all; raise max_delay or fix the clock",
			"behind", behind.Round(time.Second).String(), "max_delay", md.String())
	}
}

// maxDelay is the last sweep age (0 without sweeps).
func (r *Reader) maxDelay() time.Duration {
	if a := r.cfg.Late.Ages; len(a) > 0 {
		return a[len(a)-1]
	}
	return 0
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

// fetchResult is how a search ended.
type fetchResult int

const (
	fetched        fetchResult = iota
	fetchCancelled             // ctx is done
	// keyRefused: Teleport refuses the start key (the audit log behind
	// it changed: a backend restored or migrated, the key's event gone),
	// or answers one error again and again for it. The caller reads again
	// without the key.
	keyRefused
)

// keyRetries is how many times in a row one error is answered to a search
// with a start key before the key is given up.
const keyRetries = 5

// fetch runs one search, retrying with capped exponential backoff until it
// succeeds or ctx is done. Teleport outages, expired credentials and
// network faults are waited out, and said in the log; a start key Teleport
// refuses is not retried forever (keyRefused).
func (r *Reader) fetch(ctx context.Context, from, to time.Time, key string) ([]*event.Event, string, fetchResult) {
	bo := retry.Backoff{Init: r.cfg.BackoffInit, Max: r.cfg.BackoffMax}
	failures, same := 0, 0
	lastErr := ""
	for {
		start := time.Now()
		s, err := r.search(ctx)
		var (
			items []*event.Event
			next  string
		)
		if err == nil {
			items, next, err = s.SearchUnstructuredEvents(ctx, from, to, apidefaults.Namespace, r.cfg.EventTypes, r.cfg.BatchSize, types.EventOrderAscending, key)
		}
		if ctx.Err() == nil && r.cfg.Observe != nil {
			r.cfg.Observe(err)
		}
		if err == nil {
			r.Stats.Pages.Add(1)
			r.Stats.SearchNanos.Add(int64(time.Since(start)))
			if failures > 0 {
				r.log.Infow("Teleport audit search works again", "failed_attempts", failures)
			}
			return items, next, fetched
		}
		if ctx.Err() != nil {
			return nil, "", fetchCancelled
		}
		failures++
		r.Stats.SearchErrors.Add(1)
		// Not caught up while Teleport cannot be read.
		r.caughtUp.Store(false)
		if err.Error() == lastErr {
			same++
		} else {
			lastErr, same = err.Error(), 1
		}
		if key != "" && (badRequest(err) || same >= keyRetries) {
			r.Stats.KeysRefused.Add(1)
			r.log.Warnw("Teleport refuses the start key of the audit search (its audit log changed behind the key: a backend restored or migrated, or the key's event gone): reading again without it, from the time of the last event read; events after that time may be sent again (Elasticsearch stores each uid once)",
				"error", err.Error(), "attempts", failures, "from", from, "to", to)
			return nil, "", keyRefused
		}
		wait := bo.Next()
		r.log.Warnw("Teleport audit search failed; retrying", "error", err.Error(), "attempt", failures, "retry_in", wait.String(), "from", from, "to", to)
		var d interface{ Details() string }
		if errors.As(err, &d) {
			r.log.Debugw("Teleport audit search error, in full", "error", d.Details())
		}
		if !retry.Sleep(ctx, wait) {
			return nil, "", fetchCancelled
		}
	}
}

// badRequest reports whether Teleport refused the request as malformed
// (BadParameter, gRPC InvalidArgument).
func badRequest(err error) bool {
	if trace.IsBadParameter(err) {
		return true
	}
	var st interface{ GRPCStatus() *status.Status }
	return errors.As(err, &st) && st.GRPCStatus().Code() == codes.InvalidArgument
}

// dropKey starts the page again without its start key, from its floor
// (the time of the last event read before the key; the window's start for
// a first page): the window's earlier events were read, and the events of
// the page at or after the floor that are done stay done.
func (st *readState) dropKey() {
	floor := st.page.floor
	if floor.Before(st.from) {
		floor = st.from
	}
	if !st.to.IsZero() && floor.After(st.to) {
		floor = st.to
	}
	next := st.page.carry(floor)
	if st.page.before != nil {
		next.merge(st.page.before)
	}
	next.floor = floor
	st.from = floor
	st.page = next
}
