package audit

import (
	"context"
	apidefaults "github.com/gravitational/teleport/api/defaults"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gravitational/teleport/api/types"

	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/retry"
)

// Late events. An audit backend can make an event searchable some time
// after its own time: Athena batches events for a minute before they can be
// queried, DynamoDB's time index is eventually consistent, nodes emit
// events through a buffered stream and keep them while the Auth Service is
// unreachable, and a node's clock may run late. The head of the reader
// reads in time order and re-reads only the last page; an event that
// appears behind that page's first event is never seen by it.
//
// Sweeps catch them. Each sweep follows the head at a fixed age: it
// searches the time range it has not covered yet, up to now minus its age
// (and never past the head's page floor, which the head itself re-reads
// on every poll), and sends the events the late-event set does not know.
// An event that becomes visible d after its time is caught by the first
// sweep whose age is at least d; the last age is the promise (MaxDelay).
// Each sweep reads every event of the recent past once more, so the cost
// is one extra read per event and sweep, and none where the head's last
// page covers the range anyway (a cluster quieter than a page per poll).
//
// Sweep cursors travel with the position (Batch.Sweeps) and are committed
// only once the output acknowledged the events found before them; the set
// persists only acknowledged events. A restart resumes each sweep where
// its last acknowledged range ended.

// LateConfig configures the late-event sweeps.
type LateConfig struct {
	// Ages are the sweeps' ages, ascending; the last is how late an event
	// may become visible and still be shipped. None: no sweeps.
	Ages []time.Duration
	// Set knows the events shipped recently (required with Ages).
	Set *shipped.Set
	// Lag measures how far behind Teleport's event times run (required
	// with Ages): windows close and sweeps run on the local clock minus it.
	Lag *Lag
	// Recheck, when positive (with Record), is the age of the recheck:
	// a last sweep that reads every event once more, this long after its
	// time, and sends those Record does not know (events that became
	// visible later than the last of Ages).
	Recheck time.Duration
	Record  *shipped.Record
}

// LateStats are the sweeps' counters.
type LateStats struct {
	Caught     atomic.Int64 // late events found by sweeps and sent
	Read       atomic.Int64 // events read by sweeps (the sweeps' cost)
	Sweeps     atomic.Int64 // sweep searches (pages)
	MaxLatency atomic.Int64 // largest (found - event time) of a caught event, ns
	// RecentMax is MaxLatency since its reader last swapped it to 0 (the
	// progress log line, which reports the lateness of its interval).
	RecentMax atomic.Int64
	// Rechecked counts events found by the recheck (later than every
	// sweep), RecheckRead the events it read.
	Rechecked   atomic.Int64
	RecheckRead atomic.Int64
}

// headFloor is the earliest event time the head may still read: every
// event before it that the head will read has been read. Sweeps do not
// read past it (the head covers the rest).
type headFloor struct{ ns atomic.Int64 }

func (h *headFloor) set(t time.Time) { h.ns.Store(t.UnixNano()) }
func (h *headFloor) get() time.Time  { return time.Unix(0, h.ns.Load()).UTC() }

// sweeper runs the sweeps of one reader.
type sweeper struct {
	r       *Reader
	ages    []time.Duration // the sweeps' ages, then the recheck's
	recheck int             // the recheck's index in ages (-1: none)
	cursors []time.Time     // per age: the event time up to which it swept
	due     []time.Time     // per age: when it sweeps next
	mu      sync.Mutex      // guards cursors

	warnedDropped int64 // Set.Dropped when last warned
}

// lagProbeEvery is how often the newest event is looked at to measure the
// lag of Teleport's event times (one search of one event).
const lagProbeEvery = 30 * time.Second

// probeLag looks at the newest event in Teleport (a descending search of
// one event): when it differs from the newest seen at the last look, it
// was written since, and its age is a sample of the lag (Lag). This
// measures a Teleport clock behind this host's even while the reader is
// ahead of its events. An event timed ahead of this host's clock by more
// than the noise is said once per change: the reader reads it when its
// time comes.
func (r *Reader) probeLag(ctx context.Context) {
	lag := r.cfg.Late.Lag
	if lag == nil {
		return
	}
	s, err := r.search(ctx)
	if err != nil {
		return
	}
	now := r.cfg.Now().UTC()
	items, _, err := s.SearchUnstructuredEvents(ctx, now.Add(-24*time.Hour), now.Add(24*time.Hour), apidefaults.Namespace, r.cfg.EventTypes, 1, types.EventOrderDescending, "")
	if err != nil || len(items) == 0 || items[0].Time.IsZero() {
		if err != nil {
			r.log.Debugw("Looking at Teleport's newest event failed", "error", err)
		}
		return
	}
	newest := items[0]
	at := r.cfg.Now().UTC()
	r.probeMu.Lock()
	prev := r.lastNewest
	r.lastNewest = newest.Key()
	r.probeMu.Unlock()
	if prev != "" && prev != newest.Key() {
		lag.Observe(at, newest.Time)
		r.reportLag(at)
	}
	if ahead := newest.Time.Sub(at); ahead > 30*time.Second && time.Duration(r.warnedAhead.Load()) < ahead-lagWarnStep {
		r.warnedAhead.Store(int64(ahead))
		r.log.Warnw("Teleport has events timed ahead of this host's clock: they are read when their time comes here; check the clocks (NTP) of Teleport's hosts and this one",
			"ahead", ahead.Round(time.Second).String(), "event_id", newest.Key(), "event_time", newest.Time)
	}
}

// lagLooks is how many looks at Teleport's newest event measureLag takes,
// at most, waiting for a new event to measure the lag by.
const lagLooks = 30

// measureLag looks at the newest event, a poll interval apart, until a new
// event shows how far Teleport's clock is behind this host's (or the head,
// re-reading the end of the log, saw one appear), so that windows close
// and sweeps age on Teleport's clock. A quiet cluster gives none: after
// lagLooks looks, reading goes on with the host's clock (the lag is
// measured as soon as events come, and events a clock behind makes late
// are caught by the sweeps), and says so.
func (r *Reader) measureLag(ctx context.Context) {
	lag := r.cfg.Late.Lag
	if lag == nil {
		return
	}
	every := min(r.cfg.PollInterval, 2*time.Second)
	for look := 1; ; look++ {
		r.probeLag(ctx)
		if _, ok := lag.Measured(); ok {
			return
		}
		if look >= lagLooks {
			r.log.Infow("No new Teleport event to measure Teleport's clock by yet (a quiet cluster): windows close on this host's clock until one comes; events a clock behind this host's would make late are caught by the late-event sweeps",
				"looks", look, "over", (time.Duration(look-1) * every).String())
			return
		}
		if !retry.Sleep(ctx, every) {
			return
		}
	}
}

// reference is the clock windows close on and sweeps age by: the local
// clock, minus the lag of Teleport's event times when one is measured.
func (r *Reader) reference(now time.Time) time.Time {
	if r.cfg.Late.Lag == nil {
		return now
	}
	return now.Add(-r.cfg.Late.Lag.Behind(now))
}

// startSweeps returns the sweeper, or nil when sweeps are off. cursors are
// the stored ones (nil on a first run, or when the ages changed): they
// start at from, the head's start, but not before MaxDelay ago, so that a
// backfill is not read twice.
func (r *Reader) newSweeper(cursors []time.Time, from time.Time) *sweeper {
	ages := r.cfg.Late.Ages
	if len(ages) == 0 || r.cfg.Late.Set == nil {
		return nil
	}
	s := &sweeper{r: r, ages: slices.Clone(ages), recheck: -1}
	if r.cfg.Late.Recheck > 0 && r.cfg.Late.Record != nil {
		s.recheck = len(s.ages)
		s.ages = append(s.ages, r.cfg.Late.Recheck)
	}
	s.cursors = make([]time.Time, len(s.ages))
	ref := r.reference(r.cfg.Now())
	switch {
	case len(cursors) == len(s.ages):
		copy(s.cursors, cursors)
	case len(cursors) == len(ages) && s.recheck >= 0:
		// Stored before the recheck was on: the sweeps resume, and the
		// recheck starts now (the events shipped before were not
		// recorded for it: it would send them all again).
		copy(s.cursors, cursors)
		s.cursors[s.recheck] = ref.UTC().Truncate(time.Second)
	default:
		start := r.sweepStart(nil, from, ref)
		for i := range s.cursors {
			s.cursors[i] = start.UTC()
		}
		if s.recheck >= 0 {
			s.cursors[s.recheck] = ref.UTC().Truncate(time.Second)
			if from.After(ref) {
				s.cursors[s.recheck] = from.UTC()
			}
		}
	}
	// Nothing below the earliest cursor will be swept: the set need not
	// remember it.
	r.cfg.Late.Set.Prune(s.minCursor().Add(-time.Minute))
	return s
}

// sweepStart is where the sweeps start: the earliest stored cursor, or
// else the head's start, but not before the oldest age ago on the
// reference clock ref, so that a backfill is not read twice.
func (r *Reader) sweepStart(cursors []time.Time, from, ref time.Time) time.Time {
	if len(cursors) > 0 {
		return slices.MinFunc(cursors, func(a, b time.Time) int { return a.Compare(b) })
	}
	ages := r.cfg.Late.Ages
	if oldest := ref.Add(-ages[len(ages)-1]); from.Before(oldest) {
		return oldest
	}
	return from
}

// pruneBeforeSweeps sets the late-event set's floor before the lag is
// measured and the sweeps start: where they will start at the earliest
// (with a lag of up to unmeasuredSkew). Events the head reads below it
// are not tracked, as they are not once the sweeps run: an old event is
// never taken for one a sweep sent.
func (r *Reader) pruneBeforeSweeps(cursors []time.Time, from time.Time) {
	if len(r.cfg.Late.Ages) == 0 || r.cfg.Late.Set == nil {
		return
	}
	start := r.sweepStart(cursors, from, r.cfg.Now().Add(-unmeasuredSkew))
	r.cfg.Late.Set.Prune(start.Add(-time.Minute))
}

// minCursor is the earliest cursor of the sweeps the set serves (the
// recheck asks Record, not the set).
func (s *sweeper) minCursor() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.cursors
	if s.recheck >= 0 {
		cs = cs[:s.recheck]
	}
	return slices.MinFunc(cs, func(a, b time.Time) int { return a.Compare(b) })
}

// snapshot is a copy of the cursors.
func (s *sweeper) snapshot() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cursors)
}

// run sweeps every poll interval until ctx is done.
func (s *sweeper) run(ctx context.Context, out chan<- Batch) {
	r := s.r
	// The first batch states the cursors, so that a first run records
	// them with its first committed position.
	if !r.send(ctx, out, readBatch{Sweeps: s.snapshot()}) {
		return
	}
	lastProbe := time.Now()
	s.due = make([]time.Time, len(s.ages))
	for {
		if !retry.Sleep(ctx, r.cfg.PollInterval) {
			return
		}
		if time.Since(lastProbe) >= lagProbeEvery {
			lastProbe = time.Now()
			r.probeLag(ctx)
		}
		for i := range s.cursors {
			now := r.cfg.Now()
			if now.Before(s.due[i]) {
				continue
			}
			s.due[i] = now.Add(s.period(i))
			if !s.sweep(ctx, i, out) {
				return
			}
		}
		r.cfg.Late.Set.Prune(s.minCursor().Add(-time.Minute))
	}
}

// sweepsPerAge is how many times a sweep runs while an event ages by the
// sweep's age: often enough that a late event it catches is shipped soon
// after it becomes searchable (within a sixth of the age), seldom enough
// that an old sweep does not search Teleport every poll interval (the
// 15-minute sweep every 2.5 minutes, the 1-minute one every 10 s).
const sweepsPerAge = 6

// period is how often sweep i runs: a sixth of its age, at least every
// poll interval. Running less often reads the same events (a sweep reads
// from its cursor to its target), with fewer searches.
func (s *sweeper) period(i int) time.Duration {
	return max(s.r.cfg.PollInterval, s.ages[i]/sweepsPerAge)
}

// sweep runs sweep i once: it reads the events between its cursor and its
// target, sends those the set does not know, and then the new cursor. It
// reports false when ctx is done.
func (s *sweeper) sweep(ctx context.Context, i int, out chan<- Batch) bool {
	if i == s.recheck {
		return s.recheckSweep(ctx, out)
	}
	r := s.r
	set := r.cfg.Late.Set
	now := r.cfg.Now().UTC()
	target := r.reference(now).Add(-s.ages[i]).Truncate(time.Second)
	if floor := r.floor.get(); floor.Before(target) {
		target = floor
	}
	s.mu.Lock()
	from := s.cursors[i]
	s.mu.Unlock()
	if f := set.Floor(); from.Before(f) {
		// The set was full and forgot the minutes before f: the events
		// there can no longer be told apart from late ones.
		if dropped := set.Dropped(); dropped > s.warnedDropped {
			s.warnedDropped = dropped
			r.log.Warnw("The late-event set is full (teleportbeat.audit.late_events.max_tracked): events that become visible before this time are no longer caught by sweeps",
				"not_swept_before", f, "sweep_age", s.ages[i].String(), "events_forgotten", dropped)
		}
		from = f
	}
	if !target.After(from) {
		return true
	}
	r.log.Debugw("Sweeping the recent past for late events", "sweep_age", s.ages[i].String(), "from", from, "to", target)
	return r.eachPage(ctx, from, target, func(items []*event.Event, last bool) bool {
		r.Late.Sweeps.Add(1)
		r.Late.Read.Add(int64(len(items)))
		found := r.cfg.Now()
		var b readBatch
		var lateBy time.Duration
		for _, it := range items {
			if it.Time.IsZero() {
				continue
			}
			ref, seen := r.readLate(it)
			if seen != shipped.New {
				continue
			}
			if !r.wanted(it) {
				set.Acked(ref)
				continue
			}
			b.Events = append(b.Events, it)
			lateBy = max(lateBy, s.caught(it, found))
		}
		r.reportShared(b.Events)
		if len(b.Events) > 0 {
			ids := make([]string, 0, min(len(b.Events), 10))
			for _, e := range b.Events[:min(len(b.Events), 10)] {
				ids = append(ids, e.Key())
			}
			r.log.Infow("Late audit events caught by a sweep of the recent past", "events", len(b.Events), "sweep_age", s.ages[i].String(), "late_by_max", lateBy.Round(time.Second).String(), "event_ids", ids)
		}
		if last {
			b.Sweeps = s.reached(i, target)
		}
		b.Late = true
		if (len(b.Events) > 0 || b.Sweeps != nil) && !r.send(ctx, out, b) {
			for _, e := range b.Events {
				set.Forget(shipped.RefOf(e))
			}
			return false
		}
		return true
	})
}

// reached moves sweep i's cursor to target and returns every cursor.
func (s *sweeper) reached(i int, target time.Time) []time.Time {
	s.mu.Lock()
	s.cursors[i] = target
	s.mu.Unlock()
	return s.snapshot()
}

// eachPage hands page every page of the events between from and to, last
// set on the last one; a start key Teleport refuses starts the range
// again (what was sent is known: the late-event set, the recheck's
// record). It reports false when ctx is done or page says so.
func (r *Reader) eachPage(ctx context.Context, from, to time.Time, page func(items []*event.Event, last bool) bool) bool {
	key := ""
	for {
		items, next, res := r.fetch(ctx, from, to, key)
		switch res {
		case fetchCancelled:
			return false
		case keyRefused:
			key = ""
			continue
		}
		if !page(items, next == "") {
			return false
		}
		if next == "" {
			return true
		}
		key = next
	}
}

// recheckSweep reads the events between the recheck's cursor and its age
// ago once more and sends those Record does not know: events that became
// visible after every sweep had passed their time. Each is said, with its
// uid, and counted. It reports false when ctx is done.
func (s *sweeper) recheckSweep(ctx context.Context, out chan<- Batch) bool {
	r := s.r
	record := r.cfg.Late.Record
	i := s.recheck
	target := r.reference(r.cfg.Now().UTC()).Add(-s.ages[i]).Truncate(time.Second)
	if floor := r.floor.get(); floor.Before(target) {
		target = floor
	}
	s.mu.Lock()
	from := s.cursors[i]
	s.mu.Unlock()
	if !target.After(from) {
		return true
	}
	return r.eachPage(ctx, from, target, func(items []*event.Event, last bool) bool {
		r.Late.RecheckRead.Add(int64(len(items)))
		found := r.cfg.Now()
		var b readBatch
		for _, it := range items {
			if it.Time.IsZero() || !r.wanted(it) {
				continue
			}
			has, err := record.Has(shipped.RefOf(it))
			if err != nil {
				r.log.Warnw("The recheck cannot read its record of shipped events; it sends this event again (Elasticsearch stores each uid once)", "error", err, "event_id", it.Key())
			}
			if has {
				continue
			}
			b.Events = append(b.Events, it)
		}
		if len(b.Events) > 0 {
			r.Late.Rechecked.Add(int64(len(b.Events)))
			ids := make([]string, 0, min(len(b.Events), 20))
			var lateBy time.Duration
			for j, e := range b.Events {
				if j < 20 {
					ids = append(ids, e.Key())
				}
				lateBy = max(lateBy, found.Sub(e.Time))
			}
			r.log.Warnw("Audit events found by the recheck: they became visible in Teleport later than late_events.max_delay after their time (a node or an audit backend that held them back), after the sweeps had passed; they are sent now",
				"events", len(b.Events), "recheck_after", s.ages[i].String(), "found_after_max", lateBy.Round(time.Second).String(), "event_ids", ids)
		}
		if last {
			b.Sweeps = s.reached(i, target)
			// The days the recheck has passed are not asked about again.
			record.Forget(target)
		}
		b.Late = true
		return (len(b.Events) == 0 && b.Sweeps == nil) || r.send(ctx, out, b)
	})
}

// caught counts a late event and returns how late it was found.
func (s *sweeper) caught(it *event.Event, found time.Time) time.Duration {
	r := s.r
	r.Late.Caught.Add(1)
	d := found.Sub(it.Time)
	raise(&r.Late.MaxLatency, int64(d))
	raise(&r.Late.RecentMax, int64(d))
	r.log.Debugw("Late audit event", "event_id", it.Key(), "event_type", it.Type, "event_time", it.Time, "late_by", d.Round(time.Second).String())
	return d
}

// wanted applies the type filters to an event read by a sweep or the
// export API (searches are filtered by Teleport with event_types).
func (r *Reader) wanted(e *event.Event) bool {
	if len(r.include) > 0 {
		if _, ok := r.include[e.Type]; !ok {
			return false
		}
	}
	_, ex := r.exclude[e.Type]
	return !ex
}

// raise sets v to n if n is larger.
func raise(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}
