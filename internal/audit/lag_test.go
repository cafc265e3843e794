package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lagT0 is the tests' now.
var lagT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestLagIsTheSmallestRecentSample(t *testing.T) {
	l := &Lag{Window: 10 * time.Minute, Noise: 30 * time.Second, Keep: time.Hour}
	require.Zero(t, l.Behind(lagT0))
	// Teleport's clock 10 minutes behind: fresh events look 10m..10m5s old;
	// one event that was also late by 3 minutes does not raise the minimum.
	l.Observe(lagT0, lagT0.Add(-10*time.Minute-4*time.Second))
	l.Observe(lagT0.Add(5*time.Second), lagT0.Add(-13*time.Minute))
	l.Observe(lagT0.Add(10*time.Second), lagT0.Add(-10*time.Minute+9*time.Second))
	require.Equal(t, 10*time.Minute+1*time.Second, l.Behind(lagT0.Add(10*time.Second)))
	// Samples age out: after the window, a fresh sample of 2 s is the estimate,
	// which is noise.
	l.Observe(lagT0.Add(11*time.Minute), lagT0.Add(11*time.Minute-2*time.Second))
	require.Zero(t, l.Behind(lagT0.Add(11*time.Minute)))
	m, ok := l.Measured()
	require.True(t, ok)
	require.Equal(t, 2*time.Second, m)
}

func TestLagEstimateExpiresWithoutSamples(t *testing.T) {
	l := &Lag{Keep: time.Hour}
	l.Observe(lagT0, lagT0.Add(-5*time.Minute))
	require.Equal(t, 5*time.Minute, l.Behind(lagT0.Add(59*time.Minute)))
	require.Zero(t, l.Behind(lagT0.Add(61*time.Minute)))
}

// TestAStateFileOfEarlierReleasesStillLoads: the file the set and the
// position were kept in before the cursor owned it (written by that code,
// testdata/state-before-backup-split.state) is a backup file whose
// attachment is the encoded set: an upgrade keeps both.
