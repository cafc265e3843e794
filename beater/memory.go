package beater

import (
	"runtime/debug"

	"github.com/dustin/go-humanize"
	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from
// teleportbeat.memory_limit (0 leaves it as it is: none, or GOMEMLIMIT).
// It returns the limit in force.
//
// Measured with the benchmark (bench/RESULTS.md, 2026-12-02): 48 MiB on a
// backfill took 17 MiB off the peak anonymous memory and cost 18-39% more
// CPU per event, the collector running more often; the default is none.
func applyMemoryLimit(cfg config.Config, log *logp.Logger) int64 {
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
		log.Infow("Go memory limit set from teleportbeat.memory_limit", "limit", humanize.IBytes(uint64(cfg.MemoryLimit)))
	}
	return debug.SetMemoryLimit(-1)
}
