package input

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/management/status"
)

type reports struct{ got []string }

func (r *reports) UpdateStatus(s status.Status, msg string) {
	r.got = append(r.got, s.String()+": "+msg)
}

type expiry struct{ at time.Time }

func (e *expiry) Expiry() (time.Time, bool) { return e.at, !e.at.IsZero() }

func TestHealthFollowsTeleport(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	creds := &expiry{at: now.Add(time.Hour)}
	rep := &reports{}
	h := newHealth(rep, creds, []string{"teleport.example.com:443"})
	h.now = func() time.Time { return now }

	h.unreachable(errors.New("connection refused"))
	h.connected("example")
	h.searched("example", nil) // unchanged: reported once
	h.searched("example", errors.New("rpc error: Unavailable"))
	creds.at = now.Add(-time.Minute)
	h.searched("example", errors.New("access denied"))
	creds.at = now.Add(time.Hour) // renewed
	h.searched("example", nil)

	require.Equal(t, []string{
		"Degraded: Teleport unreachable at [teleport.example.com:443]: connection refused (retrying)",
		"Running: Reading the audit log of Teleport cluster example",
		"Degraded: Teleport audit search of cluster example fails: rpc error: Unavailable (retrying)",
		"Failed: Teleport credentials expired at 2026-01-01T11:59:00Z: renew them (tctl auth sign, or Machine ID's tbot); teleportbeat retries until they work",
		"Running: Reading the audit log of Teleport cluster example",
	}, rep.got)
}

func TestHealthHoldsDegradedWhileTheRegistryCannotBeWritten(t *testing.T) {
	rep := &reports{}
	h := newHealth(rep, &expiry{}, []string{"teleport.example.com:443"})
	h.connected("example")
	h.registryFailing(errors.New("write registry key k under /var/lib/teleportbeat/registry: no space left on device"))
	h.searched("example", nil) // a search in flight when reading paused
	h.registryWritable("example")

	require.Equal(t, []string{
		"Running: Reading the audit log of Teleport cluster example",
		"Degraded: Reading paused: cannot persist the audit position: write registry key k under /var/lib/teleportbeat/registry: no space left on device (retrying)",
		"Running: Reading the audit log of Teleport cluster example",
	}, rep.got)
}
