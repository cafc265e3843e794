package cursor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/statestore"
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

	o, err := OpenPosition(log, root, 0o600, "teleportbeat", "k", time.Now())
	require.NoError(t, err)
	defer o.Registry.Close()
	require.Equal(t, want, o.Position)
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
			o, err := OpenPosition(log, root, 0o600, "teleportbeat", "k", now)
			require.NoError(t, err)
			reg := o.Registry
			require.Nil(t, o.Position, "starts over from start_time or the recovery horizon")
			require.False(t, o.LastWrite.IsZero(), "the moved registry's last write is known")
			require.Contains(t, logs.String(), "The registry cannot be read, nor its backup; it was moved aside")
			require.Contains(t, logs.String(), "registry.corrupt-20250607T080910Z")
			_, err = os.Stat(root + ".corrupt-20250607T080910Z")
			require.NoError(t, err, "the unreadable registry is kept")

			// The new registry works, and is used again on the next start.
			require.NoError(t, reg.Save("k", pos))
			require.NoError(t, reg.Close())
			o, err = OpenPosition(log, root, 0o600, "teleportbeat", "k", now.Add(time.Hour))
			require.NoError(t, err)
			defer o.Registry.Close()
			require.Equal(t, pos, o.Position)
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
	_, err := OpenPosition(log, filepath.Join(file, "registry"), 0o600, "teleportbeat", "k", time.Now())
	require.ErrorContains(t, err, "create registry directory")
	matches, _ := filepath.Glob(filepath.Join(dir, "*corrupt*"))
	require.Empty(t, matches)
}

// TestOpenPositionRecoversFromTheBackup: with the registry unreadable, the
// position in its backup file is used, and the attachment saved with it
// (the reader's record of recently shipped events) comes back.
func TestOpenPositionRecoversFromTheBackup(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	root := filepath.Join(t.TempDir(), "registry")
	want := &Position{
		WindowStart: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), StartKey: "key-7", Done: []string{"a", "b"},
		LastEventTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Sweeps:        []time.Time{time.Date(2025, 1, 2, 3, 3, 0, 0, time.UTC), time.Date(2025, 1, 2, 2, 50, 0, 0, time.UTC)},
	}
	dir := saved(t, log, root, want)
	raw, err := json.Marshal(want)
	require.NoError(t, err)
	require.NoError(t, SaveBackup(BackupPath(root, "teleportbeat", "k"), raw, []byte("the reader's attachment"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.json"), []byte("\x00garbage"), 0o600))

	o, err := OpenPosition(log, root, 0o600, "teleportbeat", "k", time.Now())
	require.NoError(t, err)
	defer o.Registry.Close()
	require.True(t, o.FromBackup)
	require.NotEmpty(t, o.MovedAside)
	require.True(t, want.WindowStart.Equal(o.Position.WindowStart))
	require.Equal(t, want.StartKey, o.Position.StartKey)
	require.Equal(t, want.Done, o.Position.Done)
	require.Len(t, o.Position.Sweeps, 2)
	require.Equal(t, "the reader's attachment", string(o.Attachment), "the attachment comes back with the position")
	require.Contains(t, logs.String(), "reading resumes from the backup of the last acknowledged position")
}

// TestRegistryRemovedWhileRunningIsWrittenAgain: memlog keeps writing to
// removed files; the registry notices the removal, says so, and writes
// every key it holds again.
func TestRegistryRemovedWhileRunningIsWrittenAgain(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	root := filepath.Join(t.TempDir(), "registry")
	reg, err := OpenRegistry(log, root, 0o600, "teleportbeat")
	require.NoError(t, err)
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	reg.now = func() time.Time { return clock }
	first := &Position{WindowStart: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)}
	require.NoError(t, reg.Save("audit", first))
	require.NoError(t, reg.write(func(st *statestore.Store) error { return st.Set("session::s1", map[string]any{"next": 7}) }))

	require.NoError(t, os.RemoveAll(root))
	clock = clock.Add(2 * presenceCheckEvery)
	second := &Position{WindowStart: first.WindowStart, StartKey: "p2"}
	require.NoError(t, reg.Save("audit", second))
	require.Contains(t, logs.String(), "The registry was removed while teleportbeat runs")
	require.NoError(t, reg.Close())

	o, err := OpenPosition(log, root, 0o600, "teleportbeat", "audit", time.Now())
	require.NoError(t, err)
	defer o.Registry.Close()
	require.Equal(t, "p2", o.Position.StartKey, "the newest position is on disk again")
	var sess map[string]any
	require.NoError(t, o.Registry.read(func(st *statestore.Store) error { return st.Get("session::s1", &sess) }))
	require.EqualValues(t, 7, sess["next"], "other keys are written again too")
}

// A registry broken again within the same second (a crash loop, a disk
// that keeps failing) is moved aside beside the first one, not over it.
func TestRegistryBrokenTwiceInASecondIsMovedAsideTwice(t *testing.T) {
	log, _ := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	root := filepath.Join(t.TempDir(), "registry")
	now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	for i := range 3 {
		dir := saved(t, log, root, &Position{WindowStart: now.Add(-time.Hour)})
		require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.json"), []byte("\x00{{"), 0o600))
		o, err := OpenPosition(log, root, 0o600, "teleportbeat", "k", now)
		require.NoError(t, err, "break %d", i+1)
		require.NoError(t, o.Registry.Close())
		require.NoError(t, os.RemoveAll(root))
	}
	for _, name := range []string{".corrupt-20250607T080910Z", ".corrupt-20250607T080910Z-2", ".corrupt-20250607T080910Z-3"} {
		_, err := os.Stat(root + name)
		require.NoError(t, err, "%s kept", name)
	}
}

// TestSharedRegistryKeepsEachClustersPosition: clusters share one
// registry, each under its key; a record of one that cannot be read moves
// the registry aside, and each cluster resumes from its own backup.
func TestSharedRegistryKeepsEachClustersPosition(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	root := filepath.Join(t.TempDir(), "registry")
	a := &Position{WindowStart: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), StartKey: "a-7"}
	b := &Position{WindowStart: time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC), StartKey: "b-9"}
	s, err := OpenShared(log, root, 0o600, "teleportbeat", time.Now())
	require.NoError(t, err)
	for key, pos := range map[string]*Position{AuditKey("root"): a, AuditKey("leaf"): b} {
		require.NoError(t, s.Registry.Save(key, pos))
		raw, err := json.Marshal(pos)
		require.NoError(t, err)
		require.NoError(t, SaveBackup(BackupPath(root, "teleportbeat", key), raw, nil, 0o600))
	}
	require.NoError(t, s.Close())

	s, err = OpenShared(log, root, 0o600, "teleportbeat", time.Now())
	require.NoError(t, err)
	require.Equal(t, a, s.Position(AuditKey("root")).Position)
	require.Equal(t, b, s.Position(AuditKey("leaf")).Position)
	require.Nil(t, s.Position(AuditKey("new")).Position, "a cluster added to the list starts from its start")

	// One cluster's record goes bad: every cluster resumes from its backup.
	require.NoError(t, s.Registry.store.Set(AuditKey("leaf"), map[string]any{"window_start": "not a time"}))
	require.NoError(t, s.Close())
	s, err = OpenShared(log, root, 0o600, "teleportbeat", time.Now())
	require.NoError(t, err)
	defer s.Close()
	require.NotEmpty(t, s.MovedAside)
	for key, want := range map[string]*Position{AuditKey("root"): a, AuditKey("leaf"): b} {
		o := s.Position(key)
		require.True(t, o.FromBackup, key)
		require.True(t, want.WindowStart.Equal(o.Position.WindowStart), key)
		require.Equal(t, want.StartKey, o.Position.StartKey, key)
	}
	require.Contains(t, logs.String(), "registry_key")
}
