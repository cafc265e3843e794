package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/typedevents"
)

// testTeleport runs `teleportbeat test teleport` with extra settings.
func (e *env) testTeleport(extra string) (string, error) {
	cfg := e.config("teleportbeat.yml", "output.console.enabled: true\nteleportbeat.teleport.dial_timeout: 3s\n"+extra)
	out, err := exec.Command(beatBin, "test", "teleport", "-c", cfg, "--path.home", e.dir, "--path.data", filepath.Join(e.dir, "data")).CombinedOutput()
	return string(out), err
}

// TestTestTeleportCommand: `teleportbeat test teleport` prints the cluster,
// the identity and a line per check the configuration needs (OK, WARN for
// what this Teleport version lacks, ERROR), fails with each error said
// once, and says what to do.
func TestTestTeleportCommand(t *testing.T) {
	e := newEnv(t)

	out, err := e.testTeleport("")
	require.NoError(t, err, out)
	require.Contains(t, out, "cluster teleport.example.com, Teleport 18.0.0-dev")
	require.Contains(t, out, "user teleportbeat, roles teleportbeat, expires ")
	require.Contains(t, out, "search the audit log...        OK no event in the last 24 hours")
	require.Contains(t, out, "export API (past days)...      OK available")
	require.NotContains(t, out, "session recordings", "sessions are off: not checked")
	require.NotContains(t, out, "locks", "locking is off: not checked")

	e.tp.Store.Add(e.gen.Events(3, time.Now().Add(-time.Hour), time.Minute)...)
	withAll := "teleportbeat.sessions.enabled: true\nteleportbeat.lock.enabled: true\n"
	out, err = e.testTeleport(withAll)
	require.NoError(t, err, out)
	require.Regexp(t, `search the audit log\.\.\.\s+OK newest event \S+ \(\S+\)`, out)
	require.Contains(t, out, "read session recordings...     OK")
	require.Contains(t, out, "create locks...                OK the role may create and update locks")
	require.Empty(t, e.tp.Locks(), "the permission check created no lock")

	for _, c := range []struct {
		kind, line, hint string
		errors           int
	}{
		{"session", "read session recordings...     ERROR", "the role needs list and read on the session resource", 1},
		{"lock", "create locks...                ERROR", "the role needs create and update on the lock resource", 1},
		// The search and the export API both need it.
		{"event", "search the audit log...        ERROR", "the role needs list and read on the event resource", 2},
	} {
		e.tp.DenyRead(c.kind, true)
		out, err = e.testTeleport(withAll)
		require.Error(t, err, c.kind)
		require.Contains(t, out, c.line, c.kind)
		require.Contains(t, out, c.hint, c.kind)
		require.Equal(t, c.errors, strings.Count(out, "ERROR"), "%s: each said once\n%s", c.kind, out)
		require.NotContains(t, out, "Error:", "%s: not printed again by the command", c.kind)
		e.tp.DenyRead(c.kind, false)
	}

	expired, err := e.tp.NewIdentity(-time.Minute)
	require.NoError(t, err)
	require.NoError(t, expired.WriteIdentityFile(e.idFile))
	out, err = e.testTeleport("")
	require.Error(t, err)
	require.Contains(t, out, "identity validity...")
	require.Contains(t, out, "expired at "+expired.NotAfter.UTC().Format(time.RFC3339))

	fresh, err := e.tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	require.NoError(t, fresh.WriteIdentityFile(e.idFile))
	e.tp.Stop()
	// A port that refuses is said at once, in one line, with what to do
	// (dial_timeout is 30 s here: the answer does not wait for it).
	out, err = e.testTeleport("teleportbeat.teleport.dial_timeout: 30s\n")
	require.Error(t, err)
	require.Contains(t, out, fmt.Sprintf("ERROR connection refused at %s (dial tcp %s: connect: connection refused): is Teleport's Auth Service or Proxy listening there?", e.tp.Addr(), e.tp.Addr()))
	require.Equal(t, 1, strings.Count(out, "ERROR"), out)
	require.NotContains(t, out, "all connection methods failed", "the wall of sub-errors is gone")
}

// TestTestTeleportOnOlderVersions: against Teleport 13 (no unstructured
// session stream, no export API) and 12 (no unstructured search either),
// every check passes, saying which older method teleportbeat uses and what
// the version lacks.
func TestTestTeleportOnOlderVersions(t *testing.T) {
	withSessions := "teleportbeat.sessions.enabled: true\n"

	e13 := newEnvWith(t, teleporttest.Config{Version: "13.1.3", Typed: typedevents.OneOf})
	out, err := e13.testTeleport(withSessions)
	require.NoError(t, err, out)
	require.Contains(t, out, "Teleport 13.1.3")
	require.Contains(t, out, "search the audit log...        OK no event")
	require.Contains(t, out, "export API (past days)...      WARN not on this cluster")
	require.Contains(t, out, "read session recordings...     OK with StreamSessionEvents, since this Teleport has no StreamUnstructuredSessionEvents")

	e12 := newEnvWith(t, teleporttest.Config{Version: "12.4.32", Typed: typedevents.OneOf})
	out, err = e12.testTeleport(withSessions)
	require.NoError(t, err, out)
	require.Contains(t, out, "with SearchEvents, since this Teleport has no GetUnstructuredEvents")
}
