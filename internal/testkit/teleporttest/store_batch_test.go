package teleporttest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// With batching (Athena's backend), added events wait until the batch is
// released, by size at once, by age after the interval, and are
// searchable from then.
func TestBatchingReleasesBySizeAndByAge(t *testing.T) {
	var s Store
	s.SetBatching(time.Hour, 5)
	g := NewGenerator(1)
	now := time.Now()
	s.Add(g.Events(3, now, time.Millisecond)...)
	require.Zero(t, s.Len())
	require.Equal(t, 3, s.Pending())
	s.Add(g.Events(2, now, time.Millisecond)...)
	require.Equal(t, 5, s.Len(), "five waiting: released")
	require.Zero(t, s.Pending())
	for _, e := range s.All() {
		require.False(t, e.Searchable.Before(now))
	}

	s.SetBatching(50*time.Millisecond, 1000)
	s.Add(g.Events(2, now, time.Millisecond)...)
	require.Equal(t, 5, s.Len())
	require.Eventually(t, func() bool { return s.Len() == 7 }, 10*time.Second, 10*time.Millisecond, "released when the oldest has waited the interval")
	require.Equal(t, 2, s.Batches())

	s.SetBatching(time.Hour, 0)
	s.Add(g.Events(1, now, time.Millisecond)...)
	s.SetBatching(0, 0)
	require.Equal(t, 8, s.Len(), "turning batching off releases what waits")
}
