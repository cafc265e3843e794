// Package audit reads Teleport's audit log: the open window at its head,
// complete past windows in parts read at once (backfill.go) or by day
// with the export API (export.go), sweeps of the recent past and the
// recheck for events that became visible late (sweep.go), and the measure
// of Teleport's clock (lag.go). Everything it reads leaves through one
// place, handover.go, which gives each event its complete position and
// keeps the order in which the output acknowledges them. Pages and their
// positions are in page.go, the search itself in fetch.go, the head's
// polling in head.go.
package audit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"

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
