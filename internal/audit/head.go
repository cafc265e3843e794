package audit

import (
	"context"
	"math"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/retry"
)

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
