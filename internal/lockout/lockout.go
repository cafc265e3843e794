// Package lockout locks Teleport users after repeated failed logins, as
// Teleport's event handler does: N failed user.login events for one user
// within a period create a Teleport lock for that user, once.
package lockout

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/gravitational/teleport/api/types"

	"github.com/teleportbeat/teleportbeat/internal/retry"
)

// Locker creates locks: teleport/api's client.
type Locker interface {
	UpsertLock(ctx context.Context, lock types.Lock) error
}

// Config configures the detector.
type Config struct {
	FailedAttempts int
	Period         time.Duration
	// LockFor is the lock's duration (0: until removed).
	LockFor time.Duration
	// MaxEventAge ignores failures older than this: reading a backfill of
	// old events must not lock anyone now.
	MaxEventAge time.Duration
	BackoffInit time.Duration
	BackoffMax  time.Duration
	Now         func() time.Time
}

// Detector counts failed logins per user and creates locks.
type Detector struct {
	cfg    Config
	log    *logp.Logger
	locker func(context.Context) (Locker, error)
	ctx    context.Context

	mu       sync.Mutex
	failures map[string][]time.Time // recent failure times per user
	locked   map[string]time.Time   // user -> until when no new lock is made
	wg       sync.WaitGroup

	Created atomic.Int64
	Errors  atomic.Int64
}

// New returns a detector that creates locks through locker until ctx is
// done.
func New(ctx context.Context, cfg Config, log *logp.Logger, locker func(context.Context) (Locker, error)) *Detector {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Detector{cfg: cfg, log: log, locker: locker, ctx: ctx, failures: map[string][]time.Time{}, locked: map[string]time.Time{}}
}

// Wait returns when the lock creations under way are done.
func (d *Detector) Wait() { d.wg.Wait() }

// LockName is the name of the lock teleportbeat creates for user.
func LockName(user string) string {
	return "teleportbeat-failed-logins-" + strings.NewReplacer("/", "-", " ", "-").Replace(user)
}

// FailedLogin records one failed login of user at t (the event's time).
func (d *Detector) FailedLogin(user string, t time.Time) {
	if user == "" {
		return
	}
	now := d.cfg.Now()
	if now.Sub(t) > d.cfg.MaxEventAge {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if until, ok := d.locked[user]; ok && (until.IsZero() || now.Before(until)) {
		return
	}
	// Keep the failures within the period before the newest one.
	ts := append(d.failures[user], t)
	newest := ts[0]
	for _, x := range ts {
		if x.After(newest) {
			newest = x
		}
	}
	kept := ts[:0]
	for _, x := range ts {
		if newest.Sub(x) < d.cfg.Period {
			kept = append(kept, x)
		}
	}
	d.failures[user] = kept
	if len(kept) < d.cfg.FailedAttempts {
		return
	}
	delete(d.failures, user)
	var until time.Time
	if d.cfg.LockFor > 0 {
		until = now.Add(d.cfg.LockFor)
	}
	d.locked[user] = until
	n := len(kept)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.create(user, n, until)
	}()
}

func (d *Detector) create(user string, attempts int, until time.Time) {
	spec := types.LockSpecV2{
		Target:  types.LockTarget{User: user},
		Message: fmt.Sprintf("Locked by teleportbeat after %d failed logins within %s", attempts, d.cfg.Period),
	}
	if !until.IsZero() {
		u := until.UTC()
		spec.Expires = &u
	}
	lock, err := types.NewLock(LockName(user), spec)
	if err != nil {
		d.log.Errorw("Cannot build the lock", "user", user, "error", err)
		return
	}
	bo := retry.Backoff{Init: d.cfg.BackoffInit, Max: d.cfg.BackoffMax}
	wait := bo.Next()
	for attempt := 1; ; attempt++ {
		l, err := d.locker(d.ctx)
		if err == nil {
			err = l.UpsertLock(d.ctx, lock)
		}
		if err == nil {
			d.Created.Add(1)
			fields := []any{"user", user, "failed_logins", attempts, "period", d.cfg.Period.String(), "lock", LockName(user)}
			if !until.IsZero() {
				fields = append(fields, "expires", until.UTC().Format(time.RFC3339))
			}
			d.log.Infow("Locked a Teleport user after repeated failed logins", fields...)
			return
		}
		if d.ctx.Err() != nil {
			return
		}
		d.Errors.Add(1)
		d.log.Warnw("Cannot create the Teleport lock; retrying (the role needs create and update on lock)", "user", user, "attempt", attempt, "retry_in", wait.String(), "error", err)
		if !retry.Sleep(d.ctx, wait) {
			return
		}
		wait = bo.Next()
	}
}
