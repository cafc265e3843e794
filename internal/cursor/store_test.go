package cursor

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
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
		WindowEnd:     time.Date(2025, 1, 2, 3, 25, 5, 0, time.UTC),
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

	c := NewCommitter(log, reg, "k", time.Hour, nil)
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

// TestSessionCommitterWritesTheNewestProgress: a session recording's
// progress goes through the same Committer as the audit position: the
// first at once, later ones at most once per flush interval, the newest on
// Close, under the session's key.
func TestSessionCommitterWritesTheNewestProgress(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	reg, err := OpenRegistry(log, filepath.Join(t.TempDir(), "registry"), 0o600, "teleportbeat")
	require.NoError(t, err)
	defer reg.Close()
	const prefix = "teleport::session::c::"
	c := NewSessionCommitter(log, reg, prefix, "s-1", time.Hour)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c.Commit(SessionState{ID: "s-1", NextIndex: 10, State: SessionPending, Updated: at})
	require.Eventually(t, func() bool { return c.Saved().NextIndex == 10 }, 5*time.Second, 10*time.Millisecond)
	c.Commit(SessionState{ID: "s-1", NextIndex: 20, State: SessionPending, Updated: at})
	c.Commit(SessionState{ID: "s-1", NextIndex: 31, State: SessionDone, Updated: at})
	got, ok, err := reg.LoadSession(prefix, "s-1")
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 10, got.NextIndex, "later progress waits for the flush interval")
	require.NoError(t, c.Close())
	got, _, err = reg.LoadSession(prefix, "s-1")
	require.NoError(t, err)
	require.EqualValues(t, 31, got.NextIndex)
	require.Equal(t, SessionDone, got.State)
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

func TestWindowEndMustFollowWindowStart(t *testing.T) {
	start := time.Date(2025, 1, 2, 5, 0, 0, 0, time.UTC)
	p := &Position{WindowStart: start, WindowEnd: start}
	require.ErrorContains(t, p.Validate(), "window_end 2025-01-02T05:00:00Z not after window_start")
	p.WindowEnd = start.Add(time.Minute)
	require.NoError(t, p.Validate())
}

// flakySaver fails every write while full is set, as a full disk does.
type flakySaver struct {
	mu    sync.Mutex
	full  bool
	saved []string
}

func (f *flakySaver) saveK(pos *Position) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return syscall.ENOSPC
	}
	f.saved = append(f.saved, pos.StartKey)
	return nil
}

func (f *flakySaver) setFull(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = v
}

func (f *flakySaver) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.saved)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestCommitterRetriesAFailedWriteAndHoldsReadingMeanwhile(t *testing.T) {
	disk := &flakySaver{}
	c := newCommitter(logptest.NewTestingLogger(t, ""), disk.saveK, "the audit position", 0, 10*time.Millisecond, 40*time.Millisecond, nil)
	require.True(t, isClosed(c.Writable()), "writable from the start")

	disk.setFull(true)
	c.Commit(&Position{StartKey: "1"})
	require.Eventually(t, func() bool { return !isClosed(c.Writable()) }, 5*time.Second, 5*time.Millisecond, "a failed write holds reading")
	require.ErrorIs(t, c.Err(), syscall.ENOSPC)
	c.Commit(&Position{StartKey: "2"}) // acknowledged while failing: the newest is retried
	paused := c.Writable()

	disk.setFull(false) // space returns; no further commit is needed
	select {
	case <-paused:
	case <-time.After(5 * time.Second):
		t.Fatal("the position was not retried after space returned")
	}
	require.NoError(t, c.Err())
	require.Equal(t, "2", c.Saved().StartKey)
	require.Equal(t, []string{"2"}, disk.writes(), "only the newest position is written")
	require.NoError(t, c.Close())
}

func TestCommitterCloseReportsAWriteThatStillFails(t *testing.T) {
	disk := &flakySaver{full: true}
	c := newCommitter(logptest.NewTestingLogger(t, ""), disk.saveK, "the audit position", 0, time.Hour, time.Hour, nil)
	c.Commit(&Position{StartKey: "1"})
	require.Eventually(t, func() bool { return c.Err() != nil }, 5*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, c.Close(), syscall.ENOSPC, "the final position could not be saved, and Close says so")
	require.Nil(t, c.Saved())
}

// TestRegistryWritesAgainAfterTheDiskWasFull fills a small tmpfs under the
// registry: writes fail while it is full, and every write succeeds once
// space returns (libbeat's memlog alone fails every second write from then
// on), and what a restart reads is the last position written.
func TestRegistryWritesAgainAfterTheDiskWasFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	log := logptest.NewTestingLogger(t, "")
	root := filepath.Join(dir, "registry")
	reg, err := OpenRegistry(log, root, 0o600, "teleportbeat")
	require.NoError(t, err)
	defer reg.Close()
	save := func(i int) error {
		return reg.Save("k", &Position{WindowStart: time.Unix(100, 0).UTC(), StartKey: strconv.Itoa(i)})
	}
	require.NoError(t, save(0))

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	for err == nil {
		_, err = f.Write(make([]byte, 64<<10))
	}
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.NoError(t, f.Close())
	i, failed := 1, 0
	for ; i < 200 && failed < 3; i++ { // the log's last page may still take a few
		if err := save(i); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.ErrorContains(t, err, root)
			failed++
		}
	}
	require.Equal(t, 3, failed, "writes fail while the disk is full")

	require.NoError(t, os.Remove(filler))
	for j := 0; j < 10; j++ {
		require.NoError(t, save(i+j), "write %d after space returned", j)
	}
	// What a restart finds: a second process would open the same files.
	other, err := OpenRegistry(log, root, 0o600, "teleportbeat")
	require.NoError(t, err)
	defer other.Close()
	got, err := other.Load("k")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(i+9), got.StartKey)
}
