package cursor

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/internal/retry"
)

// Committer persists acknowledged positions of one kind under one key:
// the audit position (NewCommitter) or a session recording's progress
// (NewSessionCommitter). It runs off libbeat's ACK goroutine: Commit only
// records the newest position, and a goroutine writes it at most once per
// flush interval (0: on every commit), the newest one winning, and once
// more on Close: a crash replays at most what was acknowledged within the
// last interval, plus what was in flight.
//
// A failed write (path.data full or read-only) is retried with capped
// backoff until it succeeds; Writable tells the reader to stop taking new
// events meanwhile, so that what a crash would replay stays bounded by
// what was in flight when the registry stopped taking writes.
type Committer[T any] struct {
	save func(T) error
	what string // what is persisted, for the log
	// meanwhile says what happens while writes fail, for the log.
	meanwhile string
	flush     time.Duration
	log       *logp.Logger

	retryInit, retryMax time.Duration

	// onSaved, when set, is called after each successful write, and with
	// final set after the last one (Close).
	onSaved func(pos T, final bool)

	mu       sync.Mutex
	latest   *T            // newest position committed
	pending  *T            // newest position not yet written
	saved    *T            // newest position written
	failing  error         // the last write error, until a write succeeds
	writable chan struct{} // closed unless failing

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// Bounds of the wait between attempts to write a position after a failed
// write (a full or read-only path.data).
const (
	writeRetryInit = time.Second
	writeRetryMax  = 10 * time.Second
)

// NewCommitter starts a committer writing the audit position under key.
// onSaved (optional) is called after each successful write, and with
// final set after the last.
func NewCommitter(logger *logp.Logger, reg *Registry, key string, flush time.Duration, onSaved func(pos *Position, final bool)) *Committer[*Position] {
	c := newCommitter(logger, func(p *Position) error { return reg.Save(key, p) }, "the audit position", flush, writeRetryInit, writeRetryMax, onSaved)
	c.meanwhile = "reading is paused until the registry is writable again (events in flight are still delivered)"
	return c
}

// NewSessionCommitter starts a committer writing the progress of the
// session recording id under prefix+id.
func NewSessionCommitter(logger *logp.Logger, reg *Registry, prefix, id string, flush time.Duration) *Committer[SessionState] {
	c := newCommitter(logger, func(s SessionState) error { return reg.SaveSession(prefix, s) }, "the progress of session recording "+id, flush, writeRetryInit, writeRetryMax, nil)
	c.meanwhile = "it is retried; a restart meanwhile sends the recording's events acknowledged since the last write again"
	return c
}

func newCommitter[T any](logger *logp.Logger, save func(T) error, what string, flush, retryInit, retryMax time.Duration, onSaved func(T, bool)) *Committer[T] {
	writable := make(chan struct{})
	close(writable)
	c := &Committer[T]{
		meanwhile: "retrying",
		onSaved:   onSaved,
		save:      save,
		what:      what,
		flush:     flush,
		log:       logger,
		retryInit: retryInit,
		retryMax:  retryMax,
		writable:  writable,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go c.loop()
	return c
}

// Commit records pos as acknowledged. It never blocks on disk.
func (c *Committer[T]) Commit(pos T) {
	c.mu.Lock()
	c.pending, c.latest = &pos, &pos
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Latest returns the newest position committed, written or not (the zero
// T before any).
func (c *Committer[T]) Latest() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.latest == nil {
		var zero T
		return zero
	}
	return *c.latest
}

// Saved returns the newest position written (the zero T before any).
func (c *Committer[T]) Saved() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.saved == nil {
		var zero T
		return zero
	}
	return *c.saved
}

// Err returns the last registry write error, nil once writes succeed.
func (c *Committer[T]) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failing
}

// Writable returns a channel that is closed while positions can be
// persisted.
func (c *Committer[T]) Writable() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writable
}

func (c *Committer[T]) loop() {
	defer close(c.done)
	var last time.Time
	bo := retry.Backoff{Init: c.retryInit, Max: c.retryMax}
	for {
		wake := c.wake
		var retryAt <-chan time.Time
		if c.Err() != nil {
			// Failing: retry on a timer, not on every acknowledgement;
			// the newest committed position is the one retried.
			wake = nil
			retryAt = time.After(bo.Next())
		} else {
			bo.Reset()
		}
		select {
		case <-c.stop:
			c.write()
			c.final()
			return
		case <-wake:
			if wait := c.flush - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-c.stop:
					t.Stop()
					c.write()
					c.final()
					return
				case <-t.C:
				}
			}
		case <-retryAt:
		}
		c.write()
		last = time.Now()
	}
}

func (c *Committer[T]) write() {
	c.mu.Lock()
	pos := c.pending
	c.pending = nil
	c.mu.Unlock()
	if pos == nil {
		return
	}
	err := c.save(*pos)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.failing == nil {
			c.log.Errorw(fmt.Sprintf("Cannot persist %s; %s", c.what, c.meanwhile), "error", err)
			c.writable = make(chan struct{})
		}
		c.failing = err
		if c.pending == nil {
			c.pending = pos // retried until it is written
		}
		return
	}
	if c.failing != nil {
		c.log.Infow(fmt.Sprintf("%s is persisted again", upperFirst(c.what)))
		close(c.writable)
	}
	c.failing = nil
	c.saved = pos
	if c.onSaved != nil {
		c.mu.Unlock()
		c.onSaved(*pos, false)
		c.mu.Lock()
	}
}

// final tells onSaved the last position written.
func (c *Committer[T]) final() {
	c.mu.Lock()
	saved, failing := c.saved, c.failing
	c.mu.Unlock()
	if saved != nil && c.onSaved != nil && failing == nil {
		c.onSaved(*saved, true)
	}
}

// Close writes the newest position and stops the committer.
func (c *Committer[T]) Close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	return c.Err()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
