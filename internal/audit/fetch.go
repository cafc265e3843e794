package audit

import (
	"context"
	"errors"
	"time"

	apidefaults "github.com/gravitational/teleport/api/defaults"
	"github.com/gravitational/teleport/api/types"
	"github.com/gravitational/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/retry"
)

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
