// Package retry holds what every Teleport caller of teleportbeat retries
// with: a capped exponential backoff and a sleep that ends with its context.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with equal jitter: the n-th wait
// (from 0) is between half and all of min(Init*2^n, Max).
type Backoff struct {
	Init, Max time.Duration
	attempt   int
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	d := b.Init << min(b.attempt, 30)
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts over from Init (after progress).
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits d and reports true, or reports false as soon as ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
