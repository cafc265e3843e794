package lockout

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/gravitational/teleport/api/client"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

func setup(t *testing.T, cfg Config) (*teleporttest.Server, *Detector) {
	t.Helper()
	srv, err := teleporttest.New(teleporttest.Config{})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	id, err := srv.NewIdentity(time.Hour)
	require.NoError(t, err)
	kp, err := id.WriteKeyPair(filepath.Join(t.TempDir(), "tls"))
	require.NoError(t, err)
	clt, err := client.New(context.Background(), client.Config{Addrs: []string{srv.Addr()}, Credentials: []client.Credentials{client.LoadKeyPair(kp.Cert, kp.Key, kp.CA)}})
	require.NoError(t, err)
	t.Cleanup(func() { clt.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if cfg.BackoffInit == 0 {
		cfg.BackoffInit, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	}
	d := New(ctx, cfg, logptest.NewTestingLogger(t, ""), func(context.Context) (Locker, error) { return clt, nil })
	return srv, d
}

func TestLocksAfterRepeatedFailuresOnce(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	srv, d := setup(t, Config{FailedAttempts: 3, Period: time.Minute, LockFor: time.Hour, MaxEventAge: 10 * time.Minute, Now: func() time.Time { return now }})

	d.FailedLogin("alice", now.Add(-50*time.Second))
	d.FailedLogin("alice", now.Add(-20*time.Second))
	d.FailedLogin("bob", now.Add(-10*time.Second))
	d.Wait()
	require.Empty(t, srv.Locks(), "two failures are not enough")

	d.FailedLogin("alice", now.Add(-5*time.Second))
	d.FailedLogin("alice", now.Add(-4*time.Second)) // already locked: no second lock
	d.Wait()
	locks := srv.Locks()
	require.Len(t, locks, 1)
	l := locks[0]
	require.Equal(t, "teleportbeat-failed-logins-alice", l.GetName())
	require.Equal(t, "alice", l.Spec.Target.User)
	require.Contains(t, l.Spec.Message, "teleportbeat")
	require.Contains(t, l.Spec.Message, "3 failed logins")
	require.NotNil(t, l.Spec.Expires)
	require.Equal(t, now.Add(time.Hour), *l.Spec.Expires)
	require.EqualValues(t, 1, d.Created.Load())
}

func TestNoLockForSpreadOutOrOldFailures(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	srv, d := setup(t, Config{FailedAttempts: 3, Period: time.Minute, MaxEventAge: 5 * time.Minute, Now: func() time.Time { return now }})
	// Spread over more than the period.
	d.FailedLogin("carol", now.Add(-4*time.Minute))
	d.FailedLogin("carol", now.Add(-2*time.Minute))
	d.FailedLogin("carol", now.Add(-10*time.Second))
	// A backfill of old failures.
	for i := 0; i < 5; i++ {
		d.FailedLogin("dave", now.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	d.Wait()
	require.Empty(t, srv.Locks())
}

func TestLockRetriesUntilPermitted(t *testing.T) {
	now := time.Now()
	srv, d := setup(t, Config{FailedAttempts: 1, Period: time.Minute, MaxEventAge: time.Minute, Now: time.Now})
	srv.DenyRead("lock", true)
	d.FailedLogin("erin", now)
	require.Eventually(t, func() bool { return d.Errors.Load() >= 2 }, 5*time.Second, 10*time.Millisecond)
	srv.DenyRead("lock", false)
	d.Wait()
	require.Len(t, srv.Locks(), 1)
	require.Nil(t, srv.Locks()[0].Spec.Expires, "lock_for 0: until removed")
}
