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
// the binary under test: the double serves the sample events and
// teleportbeat writes every one of them to a file.
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
	require.Contains(t, text, "268 / 268 events written")
	require.Contains(t, text, "Done: 268 ECS-mapped Teleport audit events written")

	files, err := filepath.Glob(filepath.Join(dir, "events", "teleport-audit*.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		n += strings.Count(string(b), "\n")
	}
	require.Equal(t, 268, n)
}
