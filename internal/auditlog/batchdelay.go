package auditlog

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
)

// batchDelay follows how late events become searchable, so that the
// reader can read the open window behind that delay when a backend makes
// events searchable in batches. Teleport's Athena backend writes events
// to S3 in batches, when the oldest has waited batchMaxInterval (a
// minute): every event appears up to a minute after its time. Read up to
// now, the open window leaves each batch's events behind the page being
// read, and the sweeps have to catch them; the sweep at one minute misses
// those that appear just after it passed (they wait for the max_delay
// sweep, 15 minutes). Read that delay behind now, the reader reads every
// event in order, each a moment after it appears.
//
// The delay is learned only from a steady share of late events, over two
// periods in a row: at least minLate events and 1% of what the reader read
// in each. A node that comes back after an outage and sends its events
// late in one burst does not count. The delay is the largest lateness
// seen in the two periods, rounded up to a second, plus a second, at most
// maxDelay (the late-event horizon) and at most batchDelayCap; it never
// goes down while the process runs (after the change, the reader reads the
// batches in order and sees no more late events to measure by).
type batchDelay struct {
	cap time.Duration
	log *logp.Logger

	mu       sync.Mutex
	start    time.Time     // of the current period
	events   int64         // read by the reader in the period
	late     int64         // caught by the sweeps in the period
	maxLate  time.Duration // largest lateness caught in the period
	steady   bool          // the period before had a steady share too
	prevLate time.Duration // its largest lateness

	delay atomic.Int64 // ns
}

const (
	batchDelayPeriod = 2 * time.Minute
	batchDelayMin    = 5
	// batchDelayCap bounds the delay: batching backends make events
	// searchable within a minute or two (Athena: batchMaxInterval, 1m);
	// what is later than that is for the sweeps.
	batchDelayCap = 3 * time.Minute
)

func newBatchDelay(maxDelay time.Duration, log *logp.Logger) *batchDelay {
	return &batchDelay{cap: min(maxDelay, batchDelayCap), log: log}
}

// Delay is how far behind now the open window is read, beyond the
// configured safety margin.
func (b *batchDelay) Delay() time.Duration {
	if b == nil {
		return 0
	}
	return time.Duration(b.delay.Load())
}

// read counts events the reader read at now.
func (b *batchDelay) read(now time.Time, n int) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	b.events += int64(n)
}

// caught counts an event a sweep caught d after its time.
func (b *batchDelay) caught(now time.Time, d time.Duration) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	b.late++
	b.maxLate = max(b.maxLate, d)
}

// roll ends the period when it is over.
func (b *batchDelay) roll(now time.Time) {
	if b.start.IsZero() {
		b.start = now
		return
	}
	if now.Sub(b.start) < batchDelayPeriod {
		return
	}
	steady := b.late >= batchDelayMin && b.late*100 >= b.events+b.late
	if steady && b.steady {
		b.raise(max(b.maxLate, b.prevLate))
	}
	b.steady, b.prevLate = steady, b.maxLate
	b.start, b.events, b.late, b.maxLate = now, 0, 0, 0
}

func (b *batchDelay) raise(late time.Duration) {
	d := min(late.Truncate(time.Second)+2*time.Second, b.cap)
	if d <= time.Duration(b.delay.Load()) {
		return
	}
	b.delay.Store(int64(d))
	b.log.Infow("Events become searchable in batches, up to this long after their time (Teleport's Athena backend does): the open window is read this far behind now, so that every event is read in order instead of by the sweeps",
		"delay", d.String(), "late_events_in_period", b.late)
}
