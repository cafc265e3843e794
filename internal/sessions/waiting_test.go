package sessions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A backfill meets hundreds of recordings not uploaded yet at once: the
// log sums them up at most once a minute instead of a warning per try.
func TestNotFoundAnswersAreSummedUpOnceAMinute(t *testing.T) {
	m := New(Config{}, nil, nil, nil, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	say, n := m.noteNotFound(t0)
	require.True(t, say, "the first answer is said")
	require.Equal(t, 1, n)
	for i := 1; i <= 224; i++ {
		say, _ := m.noteNotFound(t0.Add(time.Duration(i) * 100 * time.Millisecond))
		require.False(t, say, "answer %d, within a minute of the last summary, is only counted", i)
	}
	say, n = m.noteNotFound(t0.Add(missingSummaryEvery))
	require.True(t, say)
	require.Equal(t, 225, n, "the summary counts every answer since the last one")
}

// Waiting counts recordings between their first "not found" and being
// found or given up, once each however many times they are retried.
func TestWaitingCountsEachRecordingOnce(t *testing.T) {
	m := New(Config{}, nil, nil, nil, nil)
	now := time.Now()
	require.Equal(t, 1, m.retryLater("a", now))
	require.Equal(t, 2, m.retryLater("a", now))
	require.Equal(t, 1, m.retryLater("b", now))
	require.EqualValues(t, 2, m.Stats.Waiting.Load())

	m.doneWaiting("a")
	m.doneWaiting("a")
	require.EqualValues(t, 1, m.Stats.Waiting.Load())
	require.Equal(t, 1, m.retryLater("a", now), "a recording found and missing again starts over")
	m.doneWaiting("never-waited")
	require.EqualValues(t, 2, m.Stats.Waiting.Load())
}
