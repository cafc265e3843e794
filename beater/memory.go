package beater

import (
	"math"
	"runtime/debug"

	"github.com/dustin/go-humanize"
	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from
// teleportbeat.memory_limit (see config.DefaultMemoryLimit for the
// measured trade-off) and returns the limit in force. env is the
// GOMEMLIMIT environment variable: the Go runtime has applied it already,
// and it is kept unless memory_limit is set in the config (0: no limit).
func applyMemoryLimit(cfg config.Config, env string, log *logp.Logger) int64 {
	switch {
	case env != "" && !cfg.MemoryLimitSet:
		log.Infow("Go memory limit from the GOMEMLIMIT environment variable (teleportbeat.memory_limit is not set)", "GOMEMLIMIT", env)
	case cfg.MemoryLimit > 0:
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
		log.Infow("Go memory limit set from teleportbeat.memory_limit", "limit", humanize.IBytes(uint64(cfg.MemoryLimit)), "default", !cfg.MemoryLimitSet)
	default:
		debug.SetMemoryLimit(math.MaxInt64)
		log.Infow("No Go memory limit (teleportbeat.memory_limit: 0)")
	}
	return debug.SetMemoryLimit(-1)
}
