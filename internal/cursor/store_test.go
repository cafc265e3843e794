package cursor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"
)

func TestRegistryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	log := logptest.NewTestingLogger(t, "")
	reg, err := OpenRegistry(log, filepath.Join(dir, "registry"), 0o600, "teleportbeat")
	require.NoError(t, err)

	got, err := reg.Load("k")
	require.NoError(t, err)
	require.Nil(t, got)

	want := &Position{
		WindowStart:   time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		StartKey:      "abc",
		Done:          []string{"u1", "u2"},
		LastEventTime: time.Date(2025, 1, 2, 3, 4, 9, 0, time.UTC),
	}
	require.NoError(t, reg.Save("k", want))
	require.NoError(t, reg.Close())

	reg, err = OpenRegistry(log, filepath.Join(dir, "registry"), 0o600, "teleportbeat")
	require.NoError(t, err)
	defer reg.Close()
	got, err = reg.Load("k")
	require.NoError(t, err)
	require.Equal(t, want, got)

	// The registry's files are private.
	err = filepath.Walk(filepath.Join(dir, "registry"), func(path string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		if !info.IsDir() {
			require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), path)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestCommitterWritesNewestAndFlushesOnClose(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	reg, err := OpenRegistry(log, filepath.Join(t.TempDir(), "registry"), 0o600, "teleportbeat")
	require.NoError(t, err)
	defer reg.Close()

	c := NewCommitter(log, reg, "k", time.Hour)
	first := &Position{WindowStart: time.Unix(100, 0).UTC(), StartKey: "1"}
	c.Commit(first)
	require.Eventually(t, func() bool { return c.Saved() == first }, 5*time.Second, 10*time.Millisecond, "the first commit is written at once")
	for i := 2; i <= 5; i++ {
		c.Commit(&Position{WindowStart: time.Unix(100, 0).UTC(), StartKey: string(rune('0' + i))})
	}
	got, err := reg.Load("k")
	require.NoError(t, err)
	require.Equal(t, "1", got.StartKey, "later commits wait for the flush interval")
	require.NoError(t, c.Close())
	got, err = reg.Load("k")
	require.NoError(t, err)
	require.Equal(t, "5", got.StartKey, "close writes the newest position")
}

func TestRegistryRoundTripsExportProgress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry")
	log := logptest.NewTestingLogger(t, "")
	reg, err := OpenRegistry(log, dir, 0o600, "teleportbeat")
	require.NoError(t, err)
	want := &Position{
		WindowStart: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC),
		Done:        []string{"carried"},
		Export: &ExportProgress{
			Chunks:     map[string]string{"20250102-7-0": "a1:17", "20250102-7-1": "a1:3"},
			DoneChunks: []string{"20250102-1-0", "20250102-2-0"},
		},
	}
	require.NoError(t, want.Validate())
	require.NoError(t, reg.Save("k", want))
	require.NoError(t, reg.Close())

	reg, err = OpenRegistry(log, dir, 0o600, "teleportbeat")
	require.NoError(t, err)
	defer reg.Close()
	got, err := reg.Load("k")
	require.NoError(t, err)
	require.Equal(t, want, got)

	// A position without export progress stays without it.
	plain := &Position{WindowStart: time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC)}
	require.NoError(t, reg.Save("k", plain))
	got, err = reg.Load("k")
	require.NoError(t, err)
	require.Nil(t, got.Export)
}

func TestExportProgressNeedsADayStart(t *testing.T) {
	p := &Position{WindowStart: time.Date(2025, 1, 2, 5, 0, 0, 0, time.UTC), Export: &ExportProgress{}}
	require.ErrorContains(t, p.Validate(), "not a UTC midnight")
}
