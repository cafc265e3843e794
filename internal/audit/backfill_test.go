package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestBackfillReadsOneDayInConcurrentParts: a single past day is cut into
// windows that are read at once, so a backfill is not held to one page per
// round trip; events still come in log order, each once, and every
// position names the part it is in.
func TestBackfillReadsOneDayInConcurrentParts(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	const n = 3000 // one every 25 s: 20.8 hours of the day
	h.srv.Store.Add(teleporttest.NewGenerator(11).Events(n, start, 25*time.Second)...)
	h.srv.Faults.SetSearchLatency(20 * time.Millisecond)
	cfg := h.config()
	cfg.BackfillConcurrency = 4
	cfg.Prefetch = 2
	r, collect := h.run(cfg, cursor.Position{WindowStart: start})
	got := collect(n)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))
	require.GreaterOrEqual(t, h.srv.MaxConcurrentSearches(), int64(3), "parts of one day are read at once")
	require.Equal(t, int64(4), r.Stats.BackfillParts.Load(), "waiting for Teleport, the reader reads as many parts as allowed")

	var last *cursor.Position
	parts := map[time.Time]bool{}
	for _, b := range got {
		for _, p := range b.Positions {
			require.False(t, p.WindowEnd.IsZero(), "a part's position has its end")
			require.True(t, p.WindowEnd.After(p.WindowStart))
			require.False(t, p.WindowEnd.After(start.Add(24*time.Hour)), "parts stay in their day")
			require.NoError(t, p.Validate())
			if last != nil {
				require.False(t, p.WindowStart.Before(last.WindowStart), "positions move forward")
				if p.WindowStart.After(last.WindowStart) {
					require.False(t, p.WindowStart.Before(last.WindowEnd), "parts do not overlap")
				}
			}
			last = p
			parts[p.WindowStart] = true
		}
	}
	// 3,000 events at prefetch x batch size = 200 events a part: about 15
	// parts (the first, unsized one is an hour: 144 events).
	require.Greater(t, len(parts), 8, "the day was cut into parts")
	require.Less(t, len(parts), 40, "parts hold about prefetch pages each")
}

// TestBackfillResumesInsideAPart: a position inside a part, with its start
// key, resumes with the part's own bounds and reads exactly what follows.
func TestBackfillResumesInsideAPart(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	const n = 1500
	h.srv.Store.Add(teleporttest.NewGenerator(12).Events(n, start, 50*time.Second)...)
	cfg := h.config()
	cfg.BackfillConcurrency = 3
	cfg.Prefetch = 2
	_, collect := h.run(cfg, cursor.Position{WindowStart: start})
	var positions []*cursor.Position
	for _, b := range collect(n) {
		positions = append(positions, b.Positions...)
	}
	// A position in a later part, on its second page, part done.
	at := -1
	for i, p := range positions {
		if p.StartKey != "" && p.WindowStart.After(start) && len(p.Done) > 1 && p.WindowEnd.Before(start.Add(20*time.Hour)) {
			at = i
			break
		}
	}
	require.GreaterOrEqual(t, at, 0, "some position is inside a later part, past its first page")
	resume := *positions[at]

	h2 := &harness{t: t, srv: h.srv, conn: h.conn, now: h.now}
	_, collect2 := h2.run(cfg, resume)
	rest := collect2(n - at - 1)
	require.Equal(t, storedIDs(h.srv.Store)[at+1:], ids(rest), "exactly the events after the position")
	first := rest[0].Advance
	if len(rest[0].Positions) > 0 {
		first = rest[0].Positions[0]
	}
	require.Equal(t, resume.WindowStart, first.WindowStart)
	require.Equal(t, resume.WindowEnd, first.WindowEnd, "the part is read to its own end")
}

// TestBackfillReadsFewPartsWhenTeleportKeepsUp: when the output is the
// slower side, parts ahead are already read when their turn comes, so the
// reader does not read more of them at once (their queues would only hold
// memory).
func TestBackfillReadsFewPartsWhenTeleportKeepsUp(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	const n = 1200
	h.srv.Store.Add(teleporttest.NewGenerator(13).Events(n, start, time.Minute)...)
	cfg := h.config()
	cfg.BackfillConcurrency = 8
	cfg.Prefetch = 2
	r := h.reader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: start})
	read := 0
	for read < n {
		b := <-out
		read += len(b.Events)
		time.Sleep(150 * time.Millisecond) // a slow output: under 700 events/s
	}
	parts := r.Stats.BackfillParts.Load()
	// Two waits are in the start itself: the very first page, and the first
	// part sized from it, begun as the first part (one page) ended. Every
	// later part was read while the output worked.
	require.LessOrEqual(t, parts, int64(4), "no more parts than the start asked for")
	require.Equal(t, n, read)
	require.Equal(t, int64(n), r.Stats.Events.Load(), "events at a part's end, read again by the next, are counted once")
}

func TestPartSizer(t *testing.T) {
	z := newPartSizer(1000, 24*time.Hour)
	_, ok := z.next()
	require.False(t, ok, "nothing read yet")

	z.observe(10*time.Minute, 500) // 1.2 s an event: 1,000 events in 20 minutes
	size, ok := z.next()
	require.True(t, ok)
	require.Equal(t, 20*time.Minute, size)

	z.observe(time.Hour, 0) // a quiet hour: grow, at most eightfold
	size, _ = z.next()
	require.Equal(t, 160*time.Minute, size)
	z.observe(24*time.Hour, 0)
	size, _ = z.next()
	require.Equal(t, 1280*time.Minute, size)
	z.observe(24*time.Hour, 0)
	size, _ = z.next()
	require.Equal(t, 24*time.Hour, size, "never more than the window")

	z.observe(time.Second, 500) // dense: never under a minute
	size, _ = z.next()
	require.Equal(t, time.Minute, size)
	z.observe(-time.Second, 5) // clocks that disagree are ignored
	size, _ = z.next()
	require.Equal(t, time.Minute, size)
}
