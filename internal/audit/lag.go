package audit

import (
	"sync"
	"time"
)

// Lag measures how far Teleport's event times are behind the local clock
// when events first become visible: a Teleport clock behind this host's, or
// an audit backend that makes every event searchable some time after it
// happened (Athena batches a minute of events at a time).
//
// Every time the reader finds events it had not seen on the page it
// re-reads at the end of the log, the newest of them was written at most
// one poll interval before the read, so read time minus its time is the
// lag plus at most a poll interval. The smallest such sample over the last
// Window is the estimate: one late event makes one large sample, the
// others keep the minimum down; a quiet cluster gives few samples, each as
// good as a busy cluster's.
type Lag struct {
	// Window is how long a sample counts (default 10m).
	Window time.Duration
	// Noise is the lag below which the estimate is 0: a poll interval and
	// a round trip (default 30s).
	Noise time.Duration
	// Keep is how long the last estimate holds when no sample comes
	// (a quiet cluster; default 1h).
	Keep time.Duration

	mu      sync.Mutex
	samples []lagSample
	last    time.Duration
	lastAt  time.Time
}

type lagSample struct {
	at  time.Time
	lag time.Duration
}

func (l *Lag) defaults() (window, noise, keep time.Duration) {
	window, noise, keep = l.Window, l.Noise, l.Keep
	if window <= 0 {
		window = 10 * time.Minute
	}
	if noise <= 0 {
		noise = 30 * time.Second
	}
	if keep <= 0 {
		keep = time.Hour
	}
	return window, noise, keep
}

// Observe records that a read at `at` found new events, the newest of them
// timed newest.
func (l *Lag) Observe(at, newest time.Time) {
	if newest.IsZero() {
		return
	}
	window, _, _ := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, lagSample{at: at, lag: at.Sub(newest)})
	cut := 0
	for cut < len(l.samples) && at.Sub(l.samples[cut].at) > window {
		cut++
	}
	l.samples = l.samples[cut:]
	m := l.samples[0].lag
	for _, s := range l.samples[1:] {
		m = min(m, s.lag)
	}
	l.last, l.lastAt = m, at
}

// Behind is the estimate at now: how far behind the local clock Teleport's
// newest events are, 0 when within the noise (or ahead).
func (l *Lag) Behind(now time.Time) time.Duration {
	_, noise, keep := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastAt.IsZero() || now.Sub(l.lastAt) > keep || l.last < noise {
		return 0
	}
	return l.last
}

// Measured is the smallest lag of the current samples, signed (negative:
// events timed ahead of the local clock), and whether there is one.
func (l *Lag) Measured() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, !l.lastAt.IsZero()
}
