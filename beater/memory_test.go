package beater

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/config"
)

func TestMemoryLimitSetting(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	debug.SetMemoryLimit(math.MaxInt64)
	log := logptest.NewTestingLogger(t, "")

	require.Equal(t, int64(math.MaxInt64), applyMemoryLimit(config.Config{}, log), "0 leaves Go's limit")
	require.Equal(t, int64(96<<20), applyMemoryLimit(config.Config{MemoryLimit: 96 << 20}, log))
}
