package tests

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIdentityRenewalWithoutRestart: the identity in use is rejected (it
// expired, or was revoked), then Machine ID writes a renewed identity file:
// teleportbeat reloads it, reconnects and ships every event exactly once.
func TestIdentityRenewalWithoutRestart(t *testing.T) {
	e := newEnv(t)
	first := e.addGenerated(2000)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out+"teleportbeat.teleport.reload_interval: 200ms\n"))
	waitFor(t, 2*time.Minute, "the first events", func() bool { return es.Count() >= len(first) })

	// The cluster stops accepting the identity in use.
	require.NoError(t, e.tp.RevokeAllBut(nil))
	more := e.gen.Events(500, time.Now().Add(-50*time.Second), 20*time.Millisecond)
	e.tp.Store.Add(more...)
	p.waitLog(30*time.Second, "client certificate has been revoked")

	// tbot writes the renewed identity.
	renewed, err := e.tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	require.NoError(t, renewed.WriteIdentityFile(e.idFile))
	p.waitLog(30*time.Second, "Teleport credentials renewed on disk; reconnecting with them")
	waitFor(t, time.Minute, "the events after the renewal", func() bool { return es.Count() >= len(first)+len(more) })
	e.settle()
	p.stop()

	received, duplicates, _ := es.Stats()
	require.Equal(t, len(first)+len(more), received, "nothing lost, nothing sent twice")
	require.Zero(t, duplicates)
}

// TestExpiredCredentialsAreReportedClearly: an expired identity is logged
// with its expiry time, and the beat keeps trying instead of exiting.
func TestExpiredCredentialsAreReportedClearly(t *testing.T) {
	e := newEnv(t)
	expired, err := e.tp.NewIdentity(-time.Minute)
	require.NoError(t, err)
	require.NoError(t, expired.WriteIdentityFile(e.idFile))
	_, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out))
	p.waitLog(30*time.Second, "Teleport credentials have expired")
	p.waitLog(30*time.Second, `"expires":"`+expired.NotAfter.UTC().Format(time.RFC3339)+`"`)
	p.waitLog(30*time.Second, "Cannot reach Teleport; retrying")
	require.False(t, p.exited(), "the beat keeps running until the credentials are renewed")
	p.stop()
}
