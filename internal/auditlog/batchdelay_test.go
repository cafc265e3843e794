package auditlog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/eventid"
	"github.com/teleportbeat/teleportbeat/internal/late"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

// TestBatchDelayIsLearnedFromASteadyShare: Athena's batches (a share of
// every period's events late by up to a minute) set the delay after two
// periods in a row, to the largest lateness rounded up plus a second; a
// burst from a node back after an outage (one period) does not; nor does a
// trickle below 1%; the delay is capped and never lowered.
func TestBatchDelayIsLearnedFromASteadyShare(t *testing.T) {
	log := logptest.NewTestingLogger(t, "")
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	period := func(b *batchDelay, i int, events, late int, lateness time.Duration) {
		at := t0.Add(time.Duration(i) * batchDelayPeriod)
		b.read(at, events)
		for range late {
			b.caught(at.Add(time.Second), lateness)
		}
	}

	athena := newBatchDelay(15*time.Minute, log)
	period(athena, 0, 2400, 400, 59*time.Second+300*time.Millisecond)
	period(athena, 1, 2400, 400, 58*time.Second)
	require.Zero(t, athena.Delay(), "one period is not steady yet")
	period(athena, 2, 2400, 400, 40*time.Second)
	require.Equal(t, 61*time.Second, athena.Delay(), "59.3 s rounded up, and a second")
	period(athena, 3, 2400, 0, 0)
	period(athena, 4, 2400, 0, 0)
	period(athena, 5, 2400, 0, 0)
	require.Equal(t, 61*time.Second, athena.Delay(), "not lowered once the batches are read in order")

	burst := newBatchDelay(15*time.Minute, log)
	period(burst, 0, 2400, 0, 0)
	period(burst, 1, 2400, 900, 20*time.Minute)
	period(burst, 2, 2400, 0, 0)
	period(burst, 3, 2400, 0, 0)
	require.Zero(t, burst.Delay(), "a node's outage is for the sweeps")

	trickle := newBatchDelay(15*time.Minute, log)
	for i := range 5 {
		period(trickle, i, 240000, 100, 30*time.Second)
	}
	require.Zero(t, trickle.Delay(), "below 1% of what is read")

	capped := newBatchDelay(15*time.Minute, log)
	for i := range 4 {
		period(capped, i, 100, 100, 10*time.Minute)
	}
	require.Equal(t, batchDelayCap, capped.Delay())
	short := newBatchDelay(time.Minute, log)
	for i := range 4 {
		period(short, i, 100, 100, 2*time.Minute)
	}
	require.Equal(t, time.Minute, short.Delay(), "never past the late-event horizon")

	var none *batchDelay
	require.Zero(t, none.Delay(), "no sweeps: nothing measured")
}

// TestTheOpenWindowIsReadBehindTheBatchDelay: with a learned delay, the
// reader reads the open window that far behind now; events newer than that
// wait until they are older.
func TestTheOpenWindowIsReadBehindTheBatchDelay(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	g := teleporttest.NewGenerator(7)
	old := g.Events(3, now.Add(-45*time.Second), time.Second)
	recent := g.Events(2, now.Add(-10*time.Second), time.Second)
	h.srv.Store.Add(old...)
	h.srv.Store.Add(recent...)
	r := h.reader(h.lateConfig(late.NewSet(0), time.Minute))
	r.delay.delay.Store(int64(30 * time.Second))
	require.Equal(t, 30*time.Second, r.margin())
	out, collect := h.runReader(r, cursor.Position{WindowStart: now.Add(-time.Hour)})
	got := ids(collect(3))
	require.ElementsMatch(t, idsOf(old), got, "the events older than the delay")
	select {
	case b := <-out:
		require.Empty(t, b.Events, "nothing newer than now minus the delay yet")
	case <-time.After(200 * time.Millisecond):
	}
	h.advance(25 * time.Second)
	got = ids(collect(2))
	require.ElementsMatch(t, idsOf(recent), got)
}

// idsOf names events as the reader does.
func idsOf(evs []*teleporttest.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, eventid.Of(e.Proto()))
	}
	return out
}
