package audit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

func exportConfig(h *harness) Config {
	cfg := h.config()
	cfg.Export = true
	cfg.BackfillConcurrency = 4
	return cfg
}

// requireOnce checks that got holds every id of want exactly once.
func requireOnce(t *testing.T, want, got []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "event %s sent %d times", id, n)
	}
	require.ElementsMatch(t, want, got)
}

// TestReaderExportsCompleteDays: a backfill from the middle of a day
// searches to midnight, then reads each complete day with the export API
// (chunks at once), then searches the open day; every event arrives once,
// including those exactly on midnights, which both ways see.
func TestReaderExportsCompleteDays(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 27, 22, 0, 0, 0, time.UTC)
	// Events every 30 s for three days and a half, several Add calls (so
	// several chunks per day), some exactly on midnights.
	g := teleporttest.NewGenerator(11)
	for i := 0; i < 7; i++ {
		h.srv.Store.Add(g.Events(1440, start.Add(time.Duration(i)*12*time.Hour), 30*time.Second)...)
	}
	h.setNow(start.Add(3*24*time.Hour + 12*time.Hour + time.Minute))
	h.srv.Faults.SetExportLatency(10 * time.Millisecond)
	r, collect := h.run(exportConfig(h), cursor.Position{WindowStart: start})
	got := collect(h.srv.Store.Len())
	requireOnce(t, storedIDs(h.srv.Store), ids(got))

	require.Positive(t, h.srv.ExportCalls())
	require.Equal(t, int64(0), r.Stats.ExportErrors.Load())
	// 3 complete days (May 28-30) of 2880 events in chunks of at most 1000.
	require.GreaterOrEqual(t, r.Stats.ExportChunks.Load(), int64(3*3))

	// Positions: the exported days carry per-chunk progress, and the
	// reader ends in the open day, searching.
	sawExport := false
	for _, b := range got {
		if b.Advance != nil && b.Advance.Export != nil {
			sawExport = true
			require.Equal(t, b.Advance.WindowStart, b.Advance.WindowStart.Truncate(24*time.Hour))
		}
	}
	require.True(t, sawExport)
	last := got[len(got)-1]
	require.Equal(t, time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC), last.Positions[len(last.Positions)-1].WindowStart)
}

// TestReaderResumesAnExportFromItsChunks: restarting from any committed
// export position sends exactly the events not covered by it.
func TestReaderResumesAnExportFromItsChunks(t *testing.T) {
	h := newHarness(t)
	day := time.Date(2025, 5, 29, 0, 0, 0, 0, time.UTC)
	g := teleporttest.NewGenerator(12)
	for i := 0; i < 5; i++ {
		h.srv.Store.Add(g.Events(900, day.Add(time.Duration(i)*4*time.Hour), 15*time.Second)...)
	}
	h.setNow(day.Add(24*time.Hour + time.Hour))
	cfg := exportConfig(h)
	cfg.BatchSize = 250
	_, collect := h.run(cfg, cursor.Position{WindowStart: day})
	first := collect(4500)

	// Cut after a batch in the middle, as a crash after its ACK would.
	var before []string
	var resume *cursor.Position
	for _, b := range first {
		for _, e := range b.Events {
			before = append(before, e.Key())
		}
		if len(before) >= 2000 && b.Advance != nil && b.Advance.Export != nil {
			resume = b.Advance
			break
		}
	}
	require.NotNil(t, resume)
	require.NotEmpty(t, resume.Export.Chunks, "chunks were in progress")

	h2 := &harness{t: t, srv: h.srv, conn: h.conn, now: h.now}
	calls := h.srv.ExportCalls()
	_, collect2 := h2.run(cfg, *resume)
	rest := ids(collect2(4500 - len(before)))
	requireOnce(t, storedIDs(h.srv.Store), append(before, rest...))
	require.Positive(t, h.srv.ExportCalls()-calls)
}

// TestReaderFallsBackToSearchWithoutTheExportAPI: a cluster whose backend
// has no export API is read with searches, in order.
func TestReaderFallsBackToSearchWithoutTheExportAPI(t *testing.T) {
	h := newHarnessWith(t, teleporttest.Config{NoExport: true})
	start := time.Date(2025, 5, 28, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(13).Events(2000, start, 2*time.Minute)...)
	h.setNow(start.Add(4 * 24 * time.Hour))
	r, collect := h.run(exportConfig(h), cursor.Position{WindowStart: start})
	got := collect(2000)
	require.Equal(t, storedIDs(h.srv.Store), ids(got), "searches keep log order")
	require.True(t, r.noExport.Load())
	require.Equal(t, int64(0), h.srv.ExportCalls())
	require.Equal(t, int64(1), h.srv.ChunkListCalls(), "asked once, then remembered")
}

// TestReaderResumesExportStreamsAfterFaults: failed and cut streams are
// resumed from the cursor of the last event received.
func TestReaderResumesExportStreamsAfterFaults(t *testing.T) {
	h := newHarness(t)
	day := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(14).Events(3000, day, 25*time.Second)...)
	h.setNow(day.Add(25 * time.Hour))
	h.srv.Faults.FailNextExports(3)
	h.srv.Faults.CutExportsAfter(400)
	r, collect := h.run(exportConfig(h), cursor.Position{WindowStart: day})
	got := collect(3000)
	requireOnce(t, storedIDs(h.srv.Store), ids(got))
	require.GreaterOrEqual(t, r.Stats.ExportErrors.Load(), int64(4))
}

// TestReaderExportPicksUpLateChunks: events that arrive for a day while it
// is exported land in new chunks; the day ends only when a listing brings
// none.
func TestReaderExportPicksUpLateChunks(t *testing.T) {
	h := newHarness(t)
	day := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	g := teleporttest.NewGenerator(15)
	h.srv.Store.Add(g.Events(2500, day, 30*time.Second)...)
	h.setNow(day.Add(25 * time.Hour))
	h.srv.Faults.SetExportLatency(100 * time.Millisecond)
	cfg := exportConfig(h)
	cfg.BackfillConcurrency = 1
	_, collect := h.run(cfg, cursor.Position{WindowStart: day})
	got := collect(1)
	late := g.Events(30, day.Add(3*time.Hour), time.Second)
	h.srv.Store.Add(late...)
	n := 0
	for _, b := range got {
		n += len(b.Events)
	}
	got = append(got, collect(2530-n)...)
	requireOnce(t, storedIDs(h.srv.Store), ids(got))
	require.GreaterOrEqual(t, h.srv.ChunkListCalls(), int64(2), "the day was listed again")
}

// TestReaderFiltersExportedEvents: event_types and exclude_event_types
// apply to exported events too (the export API has no type filter).
func TestReaderFiltersExportedEvents(t *testing.T) {
	h := newHarness(t)
	day := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	evs := teleporttest.NewGenerator(16).Events(1400, day, time.Minute)
	h.srv.Store.Add(evs...)
	h.setNow(day.Add(25 * time.Hour))
	cfg := exportConfig(h)
	cfg.EventTypes = []string{"user.login", "session.start", "kube.request"}
	cfg.ExcludeEventTypes = []string{"kube.request"}
	var want []string
	for _, e := range evs {
		if e.Type == "user.login" || e.Type == "session.start" {
			want = append(want, event.IDOf(e.Proto()))
		}
	}
	r, collect := h.run(cfg, cursor.Position{WindowStart: day})
	got := collect(len(want))
	requireOnce(t, want, ids(got))
	require.Eventually(t, func() bool { return r.Stats.Excluded.Load() == int64(len(evs)-len(want)) }, 5*time.Second, 10*time.Millisecond)
	require.Positive(t, h.srv.ExportCalls())
}

// exportDay serves one past day in chunks of 100 events and returns a
// reader of it that starts at the day's midnight.
func exportDay(t *testing.T, h *harness, chunks, concurrency int) (*Reader, time.Time) {
	t.Helper()
	day := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	g := teleporttest.NewGenerator(21)
	for i := range chunks {
		h.srv.Store.Add(g.Events(100, day.Add(time.Duration(i)*time.Hour), 30*time.Second)...)
	}
	cfg := exportConfig(h)
	cfg.BackfillConcurrency = concurrency
	return h.reader(cfg), day
}

// TestExportReadsMoreChunksAtOnceWhileTheOutputWaits: while Teleport is
// what the output waits for, every wait brings one more chunk stream, up
// to backfill_concurrency. Teleport answers only when the test releases a
// stream (the double's export gate), so the reader waits for certain each
// time: the test does not depend on how fast the machine is.
func TestExportReadsMoreChunksAtOnceWhileTheOutputWaits(t *testing.T) {
	h := newHarness(t)
	gate := h.srv.Faults.GateExports()
	r, day := exportDay(t, h, 20, 6)
	r.cfg.StarveAfter = time.Nanosecond // any wait counts: the test makes sure there is one
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Batch) // unbuffered: the publisher never holds a batch
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, cursor.Position{WindowStart: day}, out) }()
	var got []Batch
	collected := make(chan int, 1)
	go func() {
		n := 0
		for b := range out {
			got = append(got, b)
			if n += len(b.Events); n == 2000 {
				collected <- n
			}
		}
	}()
	defer func() { cancel(); <-done }()
	streams := func(want int64) {
		t.Helper()
		require.Eventually(t, func() bool { return gate.Waiting() == want }, 20*time.Second, time.Millisecond, "%d streams held", want)
	}
	// Two streams to begin with, both held: the reader waits for Teleport.
	streams(2)
	require.EqualValues(t, 2, r.Stats.ExportReaders.Load())
	// Each released chunk ends a wait: it is handed over, and one more
	// stream is started, up to backfill_concurrency (6).
	for readers := int64(3); readers <= 6; readers++ {
		// Release only once the publisher waits for Teleport.
		require.Eventually(t, r.Waiting, 20*time.Second, time.Millisecond)
		gate.Release(1)
		require.Eventually(t, func() bool { return r.Stats.ExportReaders.Load() == readers }, 20*time.Second, time.Millisecond)
		streams(readers) // the released reader's next chunk, and the new one
	}
	gate.Release(20)
	select {
	case <-collected:
	case <-time.After(20 * time.Second):
		t.Fatal("not every event read")
	}
	require.EqualValues(t, 6, r.Stats.ExportReaders.Load(), "never more than backfill_concurrency")
	cancel()
	<-done
	requireOnce(t, storedIDs(h.srv.Store), ids(got))
}

// TestAwaitCountsOnlyStarvation: more is read at once only when the
// publisher had to wait for Teleport with nothing queued for the output.
// When Teleport keeps up (a result is ready) or the output is the slower
// side (batches still queued when the wait began), no more readers start:
// they would only hold more events in memory. Each case is set up by
// conditions, not by timing.
func TestAwaitCountsOnlyStarvation(t *testing.T) {
	r := &Reader{cfg: Config{StarveAfter: 0}}

	// A result is ready: no wait at all.
	results := make(chan int, 1)
	results <- 1
	_, ok, starved := await(r, results, make(chan Batch, 2))
	require.True(t, ok)
	require.False(t, starved, "Teleport kept up")
	require.Zero(t, r.Stats.Waits.Load())

	// The output still holds a batch when the wait begins.
	busy := make(chan Batch, 2)
	busy <- Batch{}
	got := make(chan bool)
	go func() { _, _, s := await(r, results, busy); got <- s }()
	require.Eventually(t, r.Waiting, 10*time.Second, time.Millisecond)
	results <- 2
	require.False(t, <-got, "the output is the slower side")

	// Nothing queued for the output, and the publisher waited.
	go func() { _, _, s := await(r, results, make(chan Batch, 2)); got <- s }()
	require.Eventually(t, r.Waiting, 10*time.Second, time.Millisecond)
	results <- 3
	require.True(t, <-got, "starved")
	require.EqualValues(t, 2, r.Stats.Waits.Load())

	// A closed channel is no starvation.
	close(results)
	_, ok, starved = await(r, results, make(chan Batch, 2))
	require.False(t, ok)
	require.False(t, starved)
}
