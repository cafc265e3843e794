package input

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/internal/audit"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
)

// TestAuditMetricsReportTheReadersCounters: the reader's counters, the
// read-ahead ones included, are what /stats shows under teleportbeat.audit.
func TestAuditMetricsReportTheReadersCounters(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	reg, err := cursor.OpenRegistry(log, filepath.Join(t.TempDir(), "registry"), 0o600, "teleportbeat")
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	m := &auditMetrics{
		reader:    audit.NewReader(audit.Config{}, nil, log),
		progress:  fixedProgress{published: 9, acked: 8, inFlight: 1},
		committer: cursor.NewCommitter(log, reg, "k", 0, nil),
	}
	m.reader.Stats.Events.Store(42)
	m.reader.Stats.Pages.Store(3)
	m.reader.Stats.BackfillParts.Store(5)
	m.reader.Stats.ExportReaders.Store(7)
	m.reader.Stats.WaitingForLag.Store(true)
	stats := monitoring.NewRegistry()
	defer m.register(stats, "")()

	snap := monitoring.CollectStructSnapshot(stats, monitoring.Full, false)
	audit := snap["teleportbeat"].(map[string]any)["audit"].(map[string]any)
	require.Equal(t, int64(42), audit["events_read"])
	require.Equal(t, int64(3), audit["pages"])
	require.Equal(t, int64(5), audit["backfill_parts"])
	require.Equal(t, int64(7), audit["export_readers"])
	require.Equal(t, true, audit["registry_writable"])
	require.Equal(t, true, audit["waiting_for_lag"])
	require.Equal(t, int64(9), audit["events_published"])
	require.Equal(t, int64(8), audit["events_acked"])
	require.Equal(t, int64(1), audit["events_in_flight"])
	require.Zero(t, audit["lag_seconds"], "no event acknowledged yet")

	// The lag is that of the newest position committed (acknowledged),
	// before the registry has it.
	m.committer.Commit(&cursor.Position{WindowStart: time.Now().Add(-time.Hour), LastEventTime: time.Now().Add(-10 * time.Minute)})
	snap = monitoring.CollectStructSnapshot(stats, monitoring.Full, false)
	lag := snap["teleportbeat"].(map[string]any)["audit"].(map[string]any)["lag_seconds"].(float64)
	require.GreaterOrEqual(t, lag, 600.0, "ten minutes behind, or more by now")
}

type fixedProgress struct {
	published       int64
	acked, inFlight uint64
}

func (f fixedProgress) Published() int64 { return f.published }
func (f fixedProgress) Acked() uint64    { return f.acked }
func (f fixedProgress) InFlight() uint64 { return f.inFlight }
