package shipped

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestShippedRemembersAcrossRestartsAndForgetsPassedDays(t *testing.T) {
	dir := t.TempDir()
	day1 := time.Date(2025, 6, 1, 23, 59, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Minute)
	a := RefOfKey("uid-a", day1, 1)
	b := RefOfKey("uid-b", day2, 2)
	other := RefOfKey("uid-c", day2, 3)

	s := OpenRecord(dir)
	require.NoError(t, s.Add([]Ref{a, {}, b}))
	has, err := s.Has(b)
	require.NoError(t, err)
	require.True(t, has)
	require.NoError(t, s.Close())

	// A restarted beat reads the files.
	s = OpenRecord(dir)
	for _, tc := range []struct {
		r    Ref
		want bool
	}{{a, true}, {b, true}, {other, false}} {
		has, err := s.Has(tc.r)
		require.NoError(t, err)
		require.Equal(t, tc.want, has)
	}
	// Added after the day was loaded: known at once.
	require.NoError(t, s.Add([]Ref{other}))
	has, err = s.Has(other)
	require.NoError(t, err)
	require.True(t, has)

	s.Forget(day2)
	_, err = os.Stat(filepath.Join(dir, "2025-06-01.hashes"))
	require.ErrorIs(t, err, os.ErrNotExist, "the passed day's file is removed")
	_, err = os.Stat(filepath.Join(dir, "2025-06-02.hashes"))
	require.NoError(t, err)
	info, err := os.Stat(filepath.Join(dir, "2025-06-02.hashes"))
	require.NoError(t, err)
	require.Equal(t, int64(16), info.Size(), "8 bytes an event")
	require.NoError(t, s.Close())
}
