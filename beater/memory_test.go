package beater

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/common/cfgtype"
	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/config"
)

func TestMemoryLimitSetting(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	log := logptest.NewTestingLogger(t, "")
	byDefault := config.Default()
	set := func(n int64) config.Config {
		c := config.Default()
		c.MemoryLimit, c.MemoryLimitSet = cfgtype.ByteSize(n), true
		return c
	}

	debug.SetMemoryLimit(math.MaxInt64)
	require.Equal(t, int64(config.DefaultMemoryLimit), applyMemoryLimit(byDefault, "", log), "the default")
	require.Equal(t, int64(96<<20), applyMemoryLimit(set(96<<20), "", log))
	require.Equal(t, int64(math.MaxInt64), applyMemoryLimit(set(0), "", log), "0: none")

	// GOMEMLIMIT, which the runtime applied at start, is kept over the
	// default; a setting overrides it.
	debug.SetMemoryLimit(200 << 20)
	require.Equal(t, int64(200<<20), applyMemoryLimit(byDefault, "200MiB", log))
	require.Equal(t, int64(64<<20), applyMemoryLimit(set(64<<20), "200MiB", log))
	require.Equal(t, int64(math.MaxInt64), applyMemoryLimit(set(0), "200MiB", log))
}
