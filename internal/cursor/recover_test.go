package cursor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/logp/logptest"
)

// saved writes a position under root and returns the store's directory.
func saved(t *testing.T, log *logp.Logger, root string, pos *Position) string {
	t.Helper()
	reg, err := OpenRegistry(log, root, 0o600, "teleportbeat")
	require.NoError(t, err)
	require.NoError(t, reg.Save("k", pos))
	require.NoError(t, reg.Close())
	return filepath.Join(root, "teleportbeat")
}

func TestOpenPositionReadsAHealthyRegistry(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	root := filepath.Join(t.TempDir(), "registry")
	want := &Position{WindowStart: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), StartKey: "k1"}
	saved(t, log, root, want)

	reg, got, err := OpenPosition(log, root, 0o600, "teleportbeat", "k", time.Now())
	require.NoError(t, err)
	defer reg.Close()
	require.Equal(t, want, got)
	matches, _ := filepath.Glob(root + ".corrupt-*")
	require.Empty(t, matches, "a healthy registry stays where it is")

	// The registry directories are private.
	for _, d := range []string{root, filepath.Join(root, "teleportbeat")} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
}

// TestOpenPositionMovesAnUnreadableRegistryAside: whatever is wrong with
// the registry's content, the beat starts over (nil position: from
// start_time) with a new registry, and keeps the old one for inspection.
func TestOpenPositionMovesAnUnreadableRegistryAside(t *testing.T) {
	pos := &Position{WindowStart: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	cases := map[string]func(t *testing.T, log *logp.Logger, root string){
		"truncated meta file": func(t *testing.T, log *logp.Logger, root string) {
			dir := saved(t, log, root, pos)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.json"), nil, 0o600))
		},
		"garbage meta file": func(t *testing.T, log *logp.Logger, root string) {
			dir := saved(t, log, root, pos)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.json"), []byte("\x00\x01{{"), 0o600))
		},
		"record that does not decode": func(t *testing.T, log *logp.Logger, root string) {
			reg, err := OpenRegistry(log, root, 0o600, "teleportbeat")
			require.NoError(t, err)
			require.NoError(t, reg.store.Set("k", map[string]any{"window_start": "yesterday-ish"}))
			require.NoError(t, reg.Close())
		},
		"record without a window start": func(t *testing.T, log *logp.Logger, root string) {
			reg, err := OpenRegistry(log, root, 0o600, "teleportbeat")
			require.NoError(t, err)
			require.NoError(t, reg.store.Set("k", map[string]any{"window_start": "0001-01-01T00:00:00Z"}))
			require.NoError(t, reg.Close())
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
			root := filepath.Join(t.TempDir(), "registry")
			corrupt(t, log, root)

			now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
			reg, got, err := OpenPosition(log, root, 0o600, "teleportbeat", "k", now)
			require.NoError(t, err)
			require.Nil(t, got, "starts over from start_time")
			require.Contains(t, logs.String(), "The registry cannot be read; it was moved aside")
			require.Contains(t, logs.String(), "registry.corrupt-20250607T080910Z")
			_, err = os.Stat(root + ".corrupt-20250607T080910Z")
			require.NoError(t, err, "the unreadable registry is kept")

			// The new registry works, and is used again on the next start.
			require.NoError(t, reg.Save("k", pos))
			require.NoError(t, reg.Close())
			reg, got, err = OpenPosition(log, root, 0o600, "teleportbeat", "k", now.Add(time.Hour))
			require.NoError(t, err)
			defer reg.Close()
			require.Equal(t, pos, got)
		})
	}
}

// TestOpenPositionKeepsTheRegistryOnIOErrors: an I/O error says nothing
// about the position; it is reported and the registry is not touched.
func TestOpenPositionKeepsTheRegistryOnIOErrors(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "data")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, _, err := OpenPosition(log, filepath.Join(file, "registry"), 0o600, "teleportbeat", "k", time.Now())
	require.ErrorContains(t, err, "create registry directory")
	matches, _ := filepath.Glob(filepath.Join(dir, "*corrupt*"))
	require.Empty(t, matches)
}
