package tests

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTestTeleportCommand: `teleportbeat test teleport` prints the cluster,
// the identity and the permission checks, and fails clearly when one does
// not hold.
func TestTestTeleportCommand(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("teleportbeat.yml", "output.console.enabled: true\nteleportbeat.teleport.dial_timeout: 3s\n")
	run := func() (string, error) {
		out, err := exec.Command(beatBin, "test", "teleport", "-c", cfg, "--path.home", e.dir, "--path.data", filepath.Join(e.dir, "data")).CombinedOutput()
		return string(out), err
	}

	out, err := run()
	require.NoError(t, err, out)
	require.Contains(t, out, "cluster teleport.example.com, Teleport 18.0.0-dev")
	require.Contains(t, out, "user teleportbeat, roles teleportbeat, expires ")
	require.Contains(t, out, "list audit events...         OK")
	require.Contains(t, out, "read session recordings...   OK")

	e.tp.DenyRead("session", true)
	out, err = run()
	require.Error(t, err)
	require.Contains(t, out, "read session recordings...   ERROR")
	require.Contains(t, out, "the role needs read and list on the session resource")
	e.tp.DenyRead("session", false)

	e.tp.DenyRead("event", true)
	out, err = run()
	require.Error(t, err)
	require.Contains(t, out, "list audit events...         ERROR")
	e.tp.DenyRead("event", false)

	expired, err := e.tp.NewIdentity(-time.Minute)
	require.NoError(t, err)
	require.NoError(t, expired.WriteIdentityFile(e.idFile))
	out, err = run()
	require.Error(t, err)
	require.Contains(t, out, "identity validity...")
	require.Contains(t, out, "expired at "+expired.NotAfter.UTC().Format(time.RFC3339))

	fresh, err := e.tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	require.NoError(t, fresh.WriteIdentityFile(e.idFile))
	e.tp.Stop()
	out, err = run()
	require.Error(t, err)
	require.Contains(t, out, "ERROR")
	require.Contains(t, out, "connect to "+e.tp.Addr())
}
