package tests

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// addPastDays serves perDay generated events on each of the days complete
// days before today, written in several batches (so each day has several
// export chunks, not in time order).
func (e *env) addPastDays(days, perDay int) []*teleporttest.Event {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var all []*teleporttest.Event
	for d := days; d >= 1; d-- {
		day := today.Add(-time.Duration(d) * 24 * time.Hour)
		step := 24 * time.Hour / time.Duration(perDay)
		evs := e.gen.Events(perDay, day, step)
		// Batches of 1,700 events: chunks of 1,000 and 700.
		for i := 0; i < len(evs); i += 1700 {
			e.tp.Store.Add(evs[i:min(i+1700, len(evs))]...)
		}
		all = append(all, evs...)
	}
	return all
}

// TestBackfillWithTheExportAPIAcrossKills: a backfill of complete past days
// goes through the export API, chunks at once; SIGKILL three times during
// it, restart each time: every event arrives, replays are counted.
func TestBackfillWithTheExportAPIAcrossKills(t *testing.T) {
	e := newEnv(t)
	evs := append(e.addCorpus(), e.addPastDays(4, 6000)...)
	es, out := esSetup(t)
	cfg := e.config("teleportbeat.yml", out+"  bulk_max_size: 200\nqueue.mem.flush.timeout: 0s\n")
	want := expectedIDs(evs)

	p := e.killLoop(es, cfg, len(want), 3, 2000)

	checkDocs(t, es, evs)
	require.Positive(t, e.tp.ExportCalls(), "past days were exported")
	require.Contains(t, p.logs.String(), "Exported a day of the audit log")
	received, _, _ := es.Stats()
	replayed := received - len(evs)
	t.Logf("export backfill: served %d events, %d distinct ids stored, %d sent in all, %d replayed after 3 SIGKILLs, 0 lost", len(evs), es.Count(), received, replayed)
}

// TestBackfillSearchesWithoutTheExportAPI: a cluster without the export API
// (Teleport's file backend) is read with searches; the beat says so once.
func TestBackfillSearchesWithoutTheExportAPI(t *testing.T) {
	e := newEnvWith(t, teleporttest.Config{NoExport: true})
	evs := append(e.addCorpus(), e.addPastDays(3, 1500)...)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out))
	want := expectedIDs(evs)
	waitFor(t, 2*time.Minute, "every event in Elasticsearch", func() bool { return es.Count() >= len(want) })
	e.settle()
	p.stop()

	checkDocs(t, es, evs)
	require.Zero(t, e.tp.ExportCalls())
	require.Equal(t, int64(1), e.tp.ChunkListCalls(), "asked once, then remembered")
	p.waitLog(time.Second, "Teleport has no audit export API here")
	received, _, _ := es.Stats()
	require.Equal(t, len(evs), received, "searches send every event once")
}
