package teleport

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential backoff with equal jitter: the n-th wait
// is between half and all of min(init*2^n, max).
type backoff struct {
	init, max time.Duration
	attempt   int
}

func (b *backoff) next() time.Duration {
	d := b.init << min(b.attempt, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.attempt = 0 }
