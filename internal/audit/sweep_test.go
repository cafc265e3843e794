package audit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/gravitational/teleport/api/types"

	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// midday moves the harness's clock away from midnight, where windows end.
func (h *harness) midday() time.Time {
	h.setNow(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	return h.clock()
}

func (h *harness) lateConfig(set *shipped.Set, ages ...time.Duration) Config {
	cfg := h.config()
	cfg.SafetyMargin = 0
	cfg.Late = LateConfig{Ages: ages, Set: set, Lag: &Lag{}}
	return cfg
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// lateTracker tells late events from the head's in the reader's output:
// a late event is published at the last position handed over before it
// (the head's), a head event at a position of its own.
type lateTracker struct{ last *cursor.Position }

// split returns b's head and late event keys.
func (lt *lateTracker) split(b Batch) (head, lateKeys []string) {
	for i, e := range b.Events {
		if lt.last != nil && b.Positions[i] == lt.last {
			lateKeys = append(lateKeys, e.Key())
		} else {
			head = append(head, e.Key())
		}
	}
	if n := len(b.Positions); n > 0 {
		lt.last = b.Positions[n-1]
	}
	if b.Advance != nil {
		lt.last = b.Advance
	}
	return head, lateKeys
}

func lateIDs(bs []Batch) []string {
	var lt lateTracker
	var out []string
	for _, b := range bs {
		_, l := lt.split(b)
		out = append(out, l...)
	}
	return out
}

func protoIDs(evs []*teleporttest.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, event.IDOf(e.Proto()))
	}
	return out
}

// batches follows a reader's output: the events sent (late ones apart) and
// the sweep cursors last stated.
type batches struct {
	t      *testing.T
	out    <-chan Batch
	lt     lateTracker
	head   []string
	late   []string
	sweeps []time.Time
}

// until reads batches until cond holds (looking again every few
// milliseconds, for conditions on the reader's state).
func (b *batches) until(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case bt := <-b.out:
			head, lateKeys := b.lt.split(bt)
			b.head = append(b.head, head...)
			b.late = append(b.late, lateKeys...)
			if b.lt.last != nil && b.lt.last.Sweeps != nil {
				b.sweeps = b.lt.last.Sweeps
			}
		case <-deadline:
			b.t.Fatalf("timed out waiting for %s (head %d, late %d, sweeps %v)", what, len(b.head), len(b.late), b.sweeps)
		}
	}
}

func (b *batches) swept(i int, at time.Time) func() bool {
	return func() bool { return len(b.sweeps) > i && !b.sweeps[i].Before(at) }
}

// TestSweepsCatchEventsThatAppearBehindTheHead: the head has read past
// full pages; events then inserted at times behind its page are found by
// the sweep whose age covers them, once, and only they.
func TestSweepsCatchEventsThatAppearBehindTheHead(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	g := teleporttest.NewGenerator(7)
	// 300 events over the last ten minutes: three full pages of 100.
	h.srv.Store.Add(g.Events(300, now.Add(-10*time.Minute), 2*time.Second)...)
	set := shipped.NewSet(0)
	r := h.reader(h.lateConfig(set, time.Minute, 8*time.Minute))
	out, _ := h.runReader(r, cursor.Position{WindowStart: now.Add(-15 * time.Minute)})
	b := &batches{t: t, out: out}
	// The head reads everything, and the 1m sweep sweeps up to a minute
	// ago: what appears behind that now is for the 8m sweep only.
	b.until("the head and the 1m sweep", func() bool { return len(b.head) == 300 && b.swept(0, now.Add(-time.Minute))() })
	require.Empty(t, b.late, "nothing is late yet")

	// Events that became visible late: 30 s and 4 minutes behind now,
	// behind the head's page (which starts after the 300th event).
	late30s := g.Events(3, now.Add(-30*time.Second), time.Second)
	late4m := g.Events(4, now.Add(-4*time.Minute), time.Second)
	h.srv.Store.Add(late30s...)
	h.srv.Store.Add(late4m...)

	// 90 s on, the 1m sweep reaches the events 30 s late; the 4m ones are
	// behind its cursor. It stops at the head's page floor (the 300th
	// event): the head re-reads from there on every poll.
	floor := now.Add(-2 * time.Second)
	h.advance(90 * time.Second)
	b.until("the 1m sweep", b.swept(0, floor))
	require.ElementsMatch(t, protoIDs(late30s), b.late)
	// Five minutes on, the 8m sweep has passed their time.
	h.advance(5 * time.Minute)
	b.until("the 8m sweep", b.swept(1, now.Add(-2*time.Minute)))
	require.ElementsMatch(t, append(protoIDs(late30s), protoIDs(late4m)...), b.late)
	require.EqualValues(t, 7, r.Late.Caught.Load())
	require.GreaterOrEqual(t, time.Duration(r.Late.MaxLatency.Load()), 5*time.Minute, "found at least five minutes after their time")

	// Later sweeps send nothing again: every event was sent once.
	h.advance(10 * time.Minute)
	b.until("both sweeps at the head's floor", func() bool { return b.swept(0, floor)() && b.swept(1, floor)() })
	require.Len(t, b.late, 7)
	require.Len(t, b.head, 300)
	require.Equal(t, floor, b.sweeps[1], "no sweep reads past the head's floor")
}

// TestSweepsReadNothingWhileTheHeadCoversTheRange: on a cluster quieter
// than a page per poll, the head re-reads its only page (and with it every
// late event) on each poll; the sweeps have nothing to read.
func TestSweepsReadNothingWhileTheHeadCoversTheRange(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	g := teleporttest.NewGenerator(8)
	h.srv.Store.Add(g.Events(20, now.Add(-5*time.Minute), 10*time.Second)...)
	set := shipped.NewSet(0)
	r, collect := h.run(h.lateConfig(set, time.Minute, 8*time.Minute), cursor.Position{WindowStart: now.Add(-6 * time.Minute)})
	collect(20)
	lateOne := g.Events(1, now.Add(-3*time.Minute), 0)
	h.srv.Store.Add(lateOne...)
	got := collect(1)
	require.Equal(t, protoIDs(lateOne), ids(got), "the head's re-read finds it")
	require.Empty(t, lateIDs(got))
	h.advance(20 * time.Minute)
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, r.Late.Read.Load(), "no sweep read anything")
	require.Zero(t, r.Late.Caught.Load())
}

// TestHeadSkipsWhatWasAcknowledgedBeforeARestart: events the set knows as
// acknowledged (kept with the previous run's position backup) are not sent
// again when the head re-reads them from an older position.
func TestHeadSkipsWhatWasAcknowledgedBeforeARestart(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	evs := teleporttest.NewGenerator(9).Events(50, now.Add(-5*time.Minute), time.Second)
	h.srv.Store.Add(evs...)
	set := shipped.NewSet(0)
	for _, e := range evs[:30] {
		d, err := e.Decoded()
		require.NoError(t, err)
		ref := shipped.RefOf(d)
		set.Read(ref)
		set.Acked(ref)
	}
	_, collect := h.run(h.lateConfig(set, time.Minute, 8*time.Minute), cursor.Position{WindowStart: now.Add(-6 * time.Minute)})
	got := collect(20)
	require.Equal(t, protoIDs(evs[30:]), ids(got))
}

// heldProbes is a Searcher whose looks at the newest event (descending
// searches of one event, the lag probes) wait until release is closed.
type heldProbes struct {
	Searcher
	release chan struct{}
	probes  atomic.Int64
}

func (s *heldProbes) SearchUnstructuredEvents(ctx context.Context, from, to time.Time, ns string, evTypes []string, limit int, order types.EventOrder, key string) ([]*event.Event, string, error) {
	if order == types.EventOrderDescending && limit == 1 {
		s.probes.Add(1)
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	return s.Searcher.SearchUnstructuredEvents(ctx, from, to, ns, evTypes, limit, order, key)
}

func (h *harness) heldProbeReader(cfg Config) (*Reader, *heldProbes) {
	held := &heldProbes{release: make(chan struct{})}
	r := NewReader(cfg, func(ctx context.Context) (Searcher, error) {
		s, err := h.conn.AuditLog(ctx)
		if err != nil {
			return nil, err
		}
		held.Searcher = s
		if ex, ok := any(s).(Exporter); ok {
			return struct {
				*heldProbes
				Exporter
			}{held, ex}, nil
		}
		return held, nil
	}, logptest.NewTestingLogger(h.t, ""))
	return r, held
}

// A backfill does not wait for the measurement of Teleport's clock: every
// event of the past days is read while the looks at the newest event are
// held.
func TestBackfillStartsBeforeTheLagIsMeasured(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	start := now.Add(-72 * time.Hour)
	h.srv.Store.Add(teleporttest.NewGenerator(1).Events(500, start, 5*time.Minute)...) // up to ~31 h ago
	cfg := h.lateConfig(shipped.NewSet(0), time.Minute)
	cfg.PollInterval = time.Hour // the second look would come an hour later
	r, held := h.heldProbeReader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: start})
	b := &batches{t: t, out: out}
	b.until("every past event read", func() bool { return len(b.head) == 500 })
	require.Equal(t, storedIDs(h.srv.Store), b.head)
	require.Positive(t, held.probes.Load(), "the first look is under way")
	close(held.release)
}

// Before the lag is measured, the open window is read at once (reading up
// to now closes nothing: a quiet cluster's recent events are not held back
// by the looks at its clock).
func TestTheOpenWindowIsReadBeforeTheLagIsKnown(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	start := now.Add(-30 * time.Minute)
	h.srv.Store.Add(teleporttest.NewGenerator(2).Events(50, start, 10*time.Second)...)
	cfg := h.lateConfig(shipped.NewSet(0), time.Minute)
	r, held := h.heldProbeReader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: start})
	b := &batches{t: t, out: out}
	b.until("every event read while the first look is held", func() bool { return len(b.head) == 50 })
	require.Positive(t, held.probes.Load(), "the first look is under way")
	require.False(t, r.Stats.WaitingForLag.Load())
	close(held.release)
}

// A window that ended within unmeasuredSkew of now waits for the
// measurement before it closes (a Teleport clock behind this host's would
// otherwise close it early), and goes on when it is made.
func TestARecentWindowWaitsForTheLagToClose(t *testing.T) {
	h := newHarness(t)
	now := time.Date(2025, 6, 2, 0, 10, 0, 0, time.UTC) // ten minutes after midnight
	h.setNow(now)
	start := now.Add(-40 * time.Minute)
	h.srv.Store.Add(teleporttest.NewGenerator(2).Events(50, start, 10*time.Second)...)
	cfg := h.lateConfig(shipped.NewSet(0), time.Minute)
	r, held := h.heldProbeReader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: start})
	b := &batches{t: t, out: out}
	require.Eventually(t, r.Stats.WaitingForLag.Load, 20*time.Second, 5*time.Millisecond, "the reader waits for the lag")
	require.Empty(t, out, "yesterday's window is not closed before the lag is known")
	close(held.release)
	b.until("every event read", func() bool { return len(b.head) == 50 })
	require.False(t, r.Stats.WaitingForLag.Load())
}

// The bench's smoke run, as a test: two complete past days read in parts,
// and today's open window, while the lag is being measured.
func TestBackfillAcrossTheUnmeasuredBound(t *testing.T) {
	h := newHarness(t)
	h.setNow(time.Date(2025, 6, 3, 6, 5, 0, 0, time.UTC))
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(1).Events(5000, start.Add(time.Second), 48*time.Hour/5000)...)
	cfg := h.lateConfig(shipped.NewSet(0), time.Minute)
	cfg.BatchSize, cfg.Prefetch, cfg.BackfillConcurrency = 500, 2, 8
	r, held := h.heldProbeReader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: start})
	b := &batches{t: t, out: out}
	b.until("every event read before the lag is known", func() bool { return len(b.head) >= 5000 })
	require.Positive(t, held.probes.Load(), "the first look is held")
	close(held.release)
	require.Equal(t, storedIDs(h.srv.Store), b.head)
}

// Backfill parts overlap at their bound and are read at once: when the part
// after reads (and so tracks) the event at the bound first, the part before
// skips it, and must neither mark it done nor carry it to the next part,
// which would then drop it as already sent: the event would be lost.
func TestAnEventTheSetKnowsIsNotDoneOnThePage(t *testing.T) {
	h := newHarness(t)
	set := shipped.NewSet(0)
	r := h.reader(h.lateConfig(set, time.Minute))
	evs := teleporttest.NewGenerator(3).Events(2, time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), time.Second)
	first, err := evs[0].Decoded()
	require.NoError(t, err)
	atBound, err := evs[1].Decoded()
	require.NoError(t, err)
	set.Read(shipped.RefOf(atBound)) // the next part read it first

	st := &readState{from: first.Time, to: atBound.Time, page: newPageState("", nil)}
	b, _ := r.batch(st, []*event.Event{first, atBound})
	require.Equal(t, []string{first.Key()}, ids([]Batch{{Events: b.Events}}), "sent once, by the part that read it first")
	require.Equal(t, []string{first.Key()}, st.position().Done)
	carried := st.page.carry(atBound.Time)
	require.NotContains(t, carried.doneSet, atBound.Key(), "carried as sent: the next part would drop it")
	require.Equal(t, []string{atBound.Key()}, ids([]Batch{{Events: dropCarried(readBatch{Events: []*event.Event{atBound}, Positions: []*cursor.Position{{}}}, carried.doneSet).Events}}))
}

// Before the lag is measured the sweeps have not started, but the set's
// floor is already where they will start: the events of a backfill are not
// tracked, so that two old events the set cannot tell apart (one uid, type,
// time and index; Teleport's own fixtures have such pairs) are both
// exported, as they are once the sweeps run. (The demo lost 18 of its
// sample events when the floor was set only once the sweeps started.)
func TestBackfillBeforeTheLagIsMeasuredTracksNoOldEvent(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	at := now.Add(-50 * time.Hour)
	var evs []*teleporttest.Event
	for _, user := range []string{"alice", "bob"} {
		e, err := teleporttest.NewEvent(map[string]any{"event": "user.login", "uid": "fixture-uid", "time": at.Format(time.RFC3339Nano), "ei": 0, "user": user, "success": true})
		require.NoError(t, err)
		evs = append(evs, e)
	}
	h.srv.Store.Add(evs...)
	set := shipped.NewSet(0)
	cfg := h.lateConfig(set, time.Minute, 15*time.Minute)
	cfg.Export = true
	r, held := h.heldProbeReader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: now.Add(-72 * time.Hour)})
	b := &batches{t: t, out: out}
	b.until("both events read", func() bool { return len(b.head) == 2 })
	b.until("the reader at the open window, the lag not known yet", r.CaughtUp)
	require.Positive(t, held.probes.Load(), "the first look is held")
	require.Positive(t, r.Stats.ExportChunks.Load(), "read with the export API")
	require.False(t, set.Tracks(at), "the set's floor is above the backfill")
	close(held.release)
}

// A Teleport clock behind this host's, with no event yet at the first look
// (the cluster's activity starts with the beat): the measurement goes on
// until events show the lag, and only then are recent windows closed, so
// the events are read by the head in order, not left behind it for the
// sweeps to find a max_delay later.
func TestTheLagIsMeasuredWhenEventsComeAfterTheFirstLook(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	set := shipped.NewSet(0)
	cfg := h.lateConfig(set, time.Minute, 15*time.Minute)
	cfg.Window = time.Minute // windows close all the time
	r, held := h.heldProbeReader(cfg)
	close(held.release)
	out, _ := h.runReader(r, cursor.Position{WindowStart: now.Add(-15 * time.Minute)})
	b := &batches{t: t, out: out}
	b.until("two looks at an empty log", func() bool { return held.probes.Load() >= 2 })
	// Teleport's clock is 10 minutes behind: its events are timed so.
	g := teleporttest.NewGenerator(31)
	first := g.Events(5, now.Add(-10*time.Minute), time.Second)
	h.srv.Store.Add(first...)
	seen := held.probes.Load()
	b.until("a look at the first events", func() bool { return held.probes.Load() >= seen+2 })
	second := g.Events(5, now.Add(-10*time.Minute+10*time.Second), time.Second)
	h.srv.Store.Add(second...)
	b.until("every event read by the head", func() bool { return len(b.head) == 10 })
	require.Empty(t, b.late, "none left behind the head")
	behind := cfg.Late.Lag.Behind(now)
	require.InDelta(t, (10 * time.Minute).Seconds(), behind.Seconds(), 15)
}

// The first read of the end of the log after a start finds events of any
// age (written before the start): it is not a measurement of Teleport's
// clock. Counting it made a fresh start after a quiet half minute warn of
// a clock skew that was not there.
func TestTheFirstReadOfTheLogIsNoLagSample(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	h.srv.Store.Add(teleporttest.NewGenerator(32).Events(10, now.Add(-5*time.Minute-10*time.Second), time.Second)...)
	cfg := h.lateConfig(shipped.NewSet(0), time.Minute)
	r, held := h.heldProbeReader(cfg)
	close(held.release)
	out, _ := h.runReader(r, cursor.Position{WindowStart: now.Add(-10 * time.Minute)})
	b := &batches{t: t, out: out}
	b.until("the backlog read", func() bool { return len(b.head) == 10 })
	b.until("the head re-reads the end of the log", func() bool { return h.srv.SearchCalls() > held.probes.Load()+3 })
	_, measured := cfg.Late.Lag.Measured()
	require.False(t, measured, "no new event appeared: nothing measured")
	require.Zero(t, cfg.Late.Lag.Behind(now))
}

// TestTheRecheckFindsEventsLaterThanEverySweep: an event that becomes
// visible after every sweep has passed its time (a node offline for 20
// minutes, with max_delay 8m here) is found by the recheck, which reads
// each event once more later on and sends what the record of shipped
// events does not know; what was shipped is not sent again.
func TestTheRecheckFindsEventsLaterThanEverySweep(t *testing.T) {
	h := newHarness(t)
	now := h.midday()
	set := shipped.NewSet(0)
	record := shipped.OpenRecord(t.TempDir())
	cfg := h.lateConfig(set, time.Minute, 8*time.Minute)
	cfg.Late.Recheck, cfg.Late.Record = 30*time.Minute, record
	r := h.reader(cfg)
	out, _ := h.runReader(r, cursor.Position{WindowStart: now.Add(-time.Minute)})
	b := &batches{t: t, out: out}
	b.until("the sweeps start", func() bool { return len(b.sweeps) == 3 })

	// Five minutes of events after the start, read by the head and
	// acknowledged (recorded as shipped, as the publisher's ACKs do).
	g := teleporttest.NewGenerator(51)
	evs := g.Events(300, now.Add(time.Minute), time.Second) // full pages: the head's floor moves on
	h.srv.Store.Add(evs...)
	h.advance(6 * time.Minute)
	b.until("the head reads them", func() bool { return len(b.head) == 300 })
	var refs []shipped.Ref
	for _, e := range evs {
		d, err := e.Decoded()
		require.NoError(t, err)
		refs = append(refs, shipped.RefOf(d))
	}
	require.NoError(t, record.Add(refs))

	// 20 minutes on, every sweep has passed the time of an event that
	// only now becomes visible.
	h.advance(14 * time.Minute)
	b.until("the 8m sweep passes it", b.swept(1, now.Add(5*time.Minute)))
	lateOne := g.Events(1, now.Add(2*time.Minute), 0)
	h.srv.Store.Add(lateOne...)
	h.advance(time.Minute)
	calls := h.srv.SearchCalls()
	b.until("a few more polls", func() bool { return h.srv.SearchCalls() >= calls+5 })
	require.Empty(t, b.late, "too late for the sweeps")

	// 30 minutes after its time the recheck reads it again.
	h.advance(16 * time.Minute)
	b.until("the recheck", b.swept(2, now.Add(5*time.Minute)))
	require.Equal(t, protoIDs(lateOne), b.late, "found by the recheck, alone")
	require.EqualValues(t, 1, r.Late.Rechecked.Load())
	require.GreaterOrEqual(t, r.Late.RecheckRead.Load(), int64(250))
}

// Sweeps run a sixth of their age apart (at least every poll interval):
// the 1-minute sweep every 10 s, the 15-minute one every 150 s, the
// recheck at 4 h every 40 min, instead of every poll interval each.
func TestSweepsRunASixthOfTheirAgeApart(t *testing.T) {
	s := &sweeper{r: &Reader{cfg: Config{PollInterval: 2 * time.Second}}, ages: []time.Duration{time.Minute, 15 * time.Minute, 4 * time.Hour, 5 * time.Second}}
	var got []time.Duration
	for i := range s.ages {
		got = append(got, s.period(i))
	}
	require.Equal(t, []time.Duration{10 * time.Second, 150 * time.Second, 40 * time.Minute, 2 * time.Second}, got)
}
