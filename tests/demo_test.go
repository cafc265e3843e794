package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoRunsEndToEnd runs the README's first command (tools/demo) with
// the binary under test: the double serves the sample events and three
// recorded sessions, and teleportbeat writes every audit event and every
// recorded session event (but terminal output) to a file.
func TestDemoRunsEndToEnd(t *testing.T) {
	demo := filepath.Join(t.TempDir(), "demo")
	build := exec.Command("go", "build", "-o", demo, "./tools/demo")
	build.Dir = repoRoot
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	dir := filepath.Join(t.TempDir(), "demo-output")
	cmd := exec.Command(demo, "-beat", beatBin, "-dir", dir)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	require.Contains(t, text, "283 / 283 events written")
	require.Contains(t, text, "Done: 271 ECS-mapped Teleport audit events and 12 session recording events written")

	files, err := filepath.Glob(filepath.Join(dir, "events", "teleport-audit*.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	n, sessions := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		n += strings.Count(string(b), "\n")
		sessions += strings.Count(string(b), `"dataset":"teleportbeat.session"`)
	}
	require.Equal(t, 283, n)
	require.Equal(t, 12, sessions)

	log, err := os.ReadFile(filepath.Join(dir, "teleportbeat.log"))
	require.NoError(t, err)
	require.NotContains(t, string(log), "not found yet", "every session the double announces has its recording")
}
