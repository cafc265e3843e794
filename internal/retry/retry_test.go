package retry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	b := Backoff{Init: 100 * time.Millisecond, Max: time.Second}
	for n, cap := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		c := cap * time.Millisecond
		w := b.Next()
		require.GreaterOrEqual(t, w, c/2, "attempt %d", n)
		require.LessOrEqual(t, w, c, "attempt %d", n)
	}
	b.Reset()
	require.LessOrEqual(t, b.Next(), 100*time.Millisecond)
}

func TestSleepEndsWithItsContext(t *testing.T) {
	require.True(t, Sleep(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, Sleep(ctx, time.Hour))
}
