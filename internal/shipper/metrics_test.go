package shipper

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// TestAuditMetricsReportTheReadersCounters: the reader's counters, the
// read-ahead ones included, are what /stats shows under teleportbeat.audit.
func TestAuditMetricsReportTheReadersCounters(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	reg, err := cursor.OpenRegistry(log, filepath.Join(t.TempDir(), "registry"), 0o600, "teleportbeat")
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	m := &auditMetrics{
		reader:    teleport.NewAuditReader(teleport.AuditConfig{}, nil, log),
		tracker:   cursor.NewTracker(func(*cursor.Position) {}),
		committer: cursor.NewCommitter(log, reg, "k", 0),
	}
	m.reader.Stats.Events.Store(42)
	m.reader.Stats.Pages.Store(3)
	m.reader.Stats.BackfillParts.Store(5)
	m.reader.Stats.ExportReaders.Store(7)
	stats := monitoring.NewRegistry()
	defer m.register(stats)()

	snap := monitoring.CollectStructSnapshot(stats, monitoring.Full, false)
	audit := snap["teleportbeat"].(map[string]any)["audit"].(map[string]any)
	require.Equal(t, int64(42), audit["events_read"])
	require.Equal(t, int64(3), audit["pages"])
	require.Equal(t, int64(5), audit["backfill_parts"])
	require.Equal(t, int64(7), audit["export_readers"])
	require.Equal(t, true, audit["registry_writable"])
}
