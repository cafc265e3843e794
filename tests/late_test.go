package tests

// No audit event lost in the real world: events that become
// searchable late, a Teleport clock behind this host's, a registry lost
// with the default start_time. Each test serves a live stream from the
// Teleport double and ends by checking that every event served is stored.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// liveConfig is the audit section of a first run with the default
// start_time and late-event settings unless overridden by extra.
func (e *env) liveConfig(name, extra string) string {
	return e.rawConfig(name, "teleportbeat.audit.poll_interval: 1s\n"+extra)
}

// TestLateEventsAreStored is case 1: over a steady stream of events (pages
// fill, so the reader moves past what it read), events become searchable
// 5 s, 12 s, 30 s and 3 min after their own time. All are stored; the
// sweeps count what they caught and what they read.
func TestLateEventsAreStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	es, out := esSetup(t)
	port := freePort(t)
	stop := e.tp.Live(teleporttest.NewGenerator(101), 50)
	cfg := e.liveConfig("teleportbeat.yml", out+fmt.Sprintf(`teleportbeat.audit.batch_size: 100
teleportbeat.audit.late_events.sweeps: [20s]
teleportbeat.audit.late_events.max_delay: 3m30s
teleportbeat.progress_interval: 2s
http.enabled: true
http.port: %d
`, port))
	p := e.start(cfg)
	waitFor(t, time.Minute, "the live stream in Elasticsearch", func() bool { return es.Count() >= 100 })

	var late []*teleporttest.Event
	for i, d := range []time.Duration{5 * time.Second, 12 * time.Second, 30 * time.Second, 3 * time.Minute} {
		evs := teleporttest.NewGenerator(uint64(200+i)).Events(10, e.tp.Now(), 100*time.Millisecond)
		e.tp.Store.AddAfter(d, evs...)
		late = append(late, evs...)
	}
	waitFor(t, 4*time.Minute, "the events 3 min late to become searchable", func() bool { return e.tp.Store.Pending() == 0 })
	live := stop()
	all := append(live, late...)
	want := expectedIDs(all)
	waitFor(t, 2*time.Minute, "every event, the late ones included", func() bool { return es.Count() >= len(want) })
	e.settle()
	s := stats(t, port)
	p.stop()

	checkDocs(t, es, all)
	caught := num(s, "teleportbeat", "audit", "late_events_caught")
	read := num(s, "teleportbeat", "audit", "late_events_read")
	maxLate := num(s, "teleportbeat", "audit", "late_max_seconds")
	require.GreaterOrEqual(t, caught, 20.0, "the 30 s and 3 min late events were caught by sweeps")
	require.GreaterOrEqual(t, maxLate, 180.0)
	require.Contains(t, p.logs.String(), "Late audit events caught by a sweep of the recent past")
	// The progress line says, beside a lag of seconds and caught_up, that
	// events came late and how late: the 3 min ones among them.
	var lateBy []time.Duration
	for _, m := range regexp.MustCompile(`"message":"Audit progress"[^\n]*"late_events_in_interval":\d+,"late_by_max":"([^"]+)"`).FindAllStringSubmatch(p.logs.String(), -1) {
		d, err := time.ParseDuration(m[1])
		require.NoError(t, err)
		lateBy = append(lateBy, d)
	}
	require.NotEmpty(t, lateBy, "Audit progress lines say that events came late")
	require.GreaterOrEqual(t, slices.Max(lateBy), 3*time.Minute, "and how late: %v", lateBy)
	t.Logf("RESULT late-events: served %d (%d live at 50/s, 40 late by 5 s, 12 s, 30 s, 3 min), stored %d, caught by sweeps %.0f (latest %.0f s after its time), sweep reads %.0f (%.2f per event shipped), lost 0",
		len(all), len(live), es.Count(), caught, maxLate, read, read/float64(len(all)))
}

// TestClockSkewLosesNothing is case 2: Teleport's clock is 10 minutes
// behind this host's. A first run with the default start_time, and one-
// minute windows (so that windows close all the time, as days do at
// midnight), stores every event, and the beat says how far behind
// Teleport's events are.
func TestClockSkewLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, teleporttest.Config{ClockOffset: -10 * time.Minute})
	es, out := esSetup(t)
	stop := e.tp.Live(teleporttest.NewGenerator(102), 20)
	cfg := e.liveConfig("teleportbeat.yml", out+"teleportbeat.audit.window: 1m\n")
	p := e.start(cfg)
	time.Sleep(60 * time.Second) // a minute of live stream, with the clock 10 minutes apart
	evs := stop()
	want := expectedIDs(evs)
	waitFor(t, 2*time.Minute, "every event of the skewed cluster", func() bool { return es.Count() >= len(want) })
	e.settle()
	p.stop()
	checkDocs(t, es, evs)

	m := regexp.MustCompile(`Teleport's newest events are behind this host's clock[^\n]*"behind":\s*"([0-9hms.]+)"`).FindStringSubmatch(p.logs.String())
	require.NotNil(t, m, "a warning names the measured skew")
	behind, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	require.InDelta(t, (10 * time.Minute).Seconds(), behind.Seconds(), 15, "the measured skew is the offset, within a poll or two")
	t.Logf("RESULT clock-skew: Teleport 10 min behind, window 1m, default start_time: served %d, stored %d, measured lag %s, lost 0", len(evs), es.Count(), behind)
}

// TestLostRegistryLosesNothing is case 3, with the default start_time and
// a live stream: a registry damaged while the beat was down is recovered
// from its backup; with the backup damaged too, reading starts from the
// recovery horizon before the registry's last write (not from now); a
// registry directory removed while the beat runs is noticed and written
// again.
func TestLostRegistryLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	es, out := esSetup(t)
	stop := e.tp.Live(teleporttest.NewGenerator(103), 20)
	cfg := e.liveConfig("teleportbeat.yml", out)
	registry := filepath.Join(e.dir, "data", "registry")
	store := filepath.Join(registry, "teleportbeat")
	served := func() []*teleporttest.Event { return e.tp.Store.All() }
	// runDown runs the beat until the stream so far is stored, SIGKILLs it
	// and lets the stream run on for a while without it.
	runDown := func(what string) *proc {
		p := e.start(cfg)
		n := len(expectedIDs(served()))
		waitFor(t, 2*time.Minute, what, func() bool { return es.Count() >= n+20 })
		waitFor(t, time.Minute, "the registry and its backup", func() bool {
			_, err1 := os.Stat(filepath.Join(store, "meta.json"))
			states, _ := filepath.Glob(filepath.Join(registry, "teleportbeat-late", "*.state"))
			return err1 == nil && len(states) == 1
		})
		p.kill()
		time.Sleep(10 * time.Second) // 200 events while the beat is down
		return p
	}
	runDown("the first events")

	// 1. The registry's metadata is garbage: resumed from the backup.
	require.NoError(t, os.WriteFile(filepath.Join(store, "meta.json"), []byte("\x00garbage"), 0o600))
	p := runDown("the events since, after the corruption")
	require.Contains(t, p.logs.String(), "reading resumes from the backup of the last acknowledged position")

	// 2. Registry and backup garbage: from the recovery horizon before
	// the registry's last write.
	require.NoError(t, os.WriteFile(filepath.Join(store, "meta.json"), []byte("\x00garbage"), 0o600))
	states, _ := filepath.Glob(filepath.Join(registry, "teleportbeat-late", "*.state"))
	require.Len(t, states, 1)
	require.NoError(t, os.WriteFile(states[0], []byte("garbage"), 0o600))
	p = runDown("the events since, after the second corruption")
	require.Contains(t, p.logs.String(), "Reading starts again from the recovery horizon before the unreadable registry's last write")

	// 3. The registry directory is removed while the beat runs.
	p = e.start(cfg)
	n := len(expectedIDs(served()))
	waitFor(t, 2*time.Minute, "the events since", func() bool { return es.Count() >= n+20 })
	// The beat writes its files while they are removed (as with rm -rf on
	// a running beat): a removal that meets a file written meanwhile is
	// repeated, as a user would.
	waitFor(t, time.Minute, "the registry removed", func() bool { return os.RemoveAll(registry) == nil })
	p.waitLog(time.Minute, "The registry was removed while teleportbeat runs; it is written again from memory")
	waitFor(t, time.Minute, "the registry on disk again", func() bool {
		_, err := os.Stat(filepath.Join(store, "meta.json"))
		return err == nil
	})
	p.kill()
	received, _, _ := es.Stats()
	time.Sleep(5 * time.Second)
	p = e.start(cfg)
	require.Eventually(t, func() bool { return strings.Contains(p.logs.String(), "Reading the Teleport audit log") }, time.Minute, 50*time.Millisecond)
	require.NotContains(t, p.logs.String(), "The registry cannot be read")
	evs := stop()
	want := expectedIDs(evs)
	waitFor(t, 2*time.Minute, "every event", func() bool { return es.Count() >= len(want) })
	e.settle()
	p.stop()
	checkDocs(t, es, evs)
	after, _, _ := es.Stats()
	// The restart after the removal resumed from the rewritten registry:
	// it sent little more than the events served since the kill.
	require.Less(t, after-received, 2*(len(want)-n)+1000)
	t.Logf("RESULT lost-registry: served %d live, stored %d; corrupt registry resumed from its backup; registry and backup corrupt resumed from the recovery horizon; registry removed while running written again; lost 0", len(evs), es.Count())
}

// withUID returns a generated event at t with the given uid.
func withUID(t *testing.T, g *teleporttest.Generator, at time.Time, uid string) *teleporttest.Event {
	t.Helper()
	f := g.Event(at)
	f["uid"] = uid
	ev, err := teleporttest.NewEvent(f)
	require.NoError(t, err)
	return ev
}

// TestDistinctEventsWithOneUidAreAllStored is case 7: pairs of different
// events with one uid, at the same time and 30 s apart, in a live stream.
// Each event is stored (the second under <uid>#<content hash>, tagged),
// the beat warns with the uid, and /stats counts them.
func TestDistinctEventsWithOneUidAreAllStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	es, out := esSetup(t)
	port := freePort(t)
	stop := e.tp.Live(teleporttest.NewGenerator(104), 20)
	p := e.start(e.liveConfig("teleportbeat.yml", out+fmt.Sprintf("http.enabled: true\nhttp.port: %d\n", port)))
	g := teleporttest.NewGenerator(105)
	var pairs []*teleporttest.Event
	for i := 0; i < 5; i++ {
		at := e.tp.Now()
		uid := fmt.Sprintf("shared-same-time-%d", i)
		a, b := withUID(t, g, at, uid), withUID(t, g, at, uid)
		e.tp.Store.Add(a, b)
		pairs = append(pairs, a, b)
	}
	apart := make([]*teleporttest.Event, 5)
	for i := range apart {
		apart[i] = withUID(t, g, e.tp.Now(), fmt.Sprintf("shared-30s-apart-%d", i))
		e.tp.Store.Add(apart[i])
	}
	time.Sleep(30 * time.Second)
	for i := range apart {
		second := withUID(t, g, e.tp.Now(), fmt.Sprintf("shared-30s-apart-%d", i))
		e.tp.Store.Add(second)
		pairs = append(pairs, apart[i], second)
	}
	evs := append(stop(), pairs...)
	waitFor(t, 2*time.Minute, "every event, both of each pair", func() bool { return es.Count() >= len(evs) })
	e.settle()
	s := stats(t, port)
	p.stop()
	checkDocs(t, es, evs)
	require.Equal(t, len(evs), es.Count(), "every event is stored, each pair twice")
	for i := 0; i < 5; i++ {
		require.Contains(t, p.logs.String(), fmt.Sprintf("shared-same-time-%d", i))
		require.Contains(t, p.logs.String(), fmt.Sprintf("shared-30s-apart-%d", i))
	}
	require.Contains(t, p.logs.String(), "Two different audit events have the same uid")
	require.EqualValues(t, 10, num(s, "teleportbeat", "audit", "uid_collisions"))
	t.Logf("RESULT shared-uid: %d events, 10 pairs sharing a uid (5 at one time, 5 30 s apart): stored %d, warned and counted 10, lost 0", len(evs), es.Count())
}

// TestEventsLaterThanMaxDelayAreFoundByTheRecheck: events that become
// visible after every sweep has passed their time (here 80 s late with
// max_delay 1m; with the defaults, up to 4 h against 15m) are found by the
// recheck, said with their uids, counted, and stored once.
func TestEventsLaterThanMaxDelayAreFoundByTheRecheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	es, out := esSetup(t)
	port := freePort(t)
	stop := e.tp.Live(teleporttest.NewGenerator(111), 50)
	cfg := e.liveConfig("teleportbeat.yml", out+fmt.Sprintf(`teleportbeat.audit.batch_size: 100
teleportbeat.audit.late_events.sweeps: [20s]
teleportbeat.audit.late_events.max_delay: 1m
teleportbeat.audit.late_events.recheck_after: 2m
http.enabled: true
http.port: %d
`, port))
	p := e.start(cfg)
	waitFor(t, time.Minute, "the live stream in Elasticsearch", func() bool { return es.Count() >= 100 })
	tooLate := teleporttest.NewGenerator(112).Events(20, e.tp.Now(), 100*time.Millisecond)
	e.tp.Store.AddAfter(80*time.Second, tooLate...)
	waitFor(t, 2*time.Minute, "the late events to become searchable", func() bool { return e.tp.Store.Pending() == 0 })
	live := stop()
	all := append(live, tooLate...)
	waitFor(t, 3*time.Minute, "every event, the ones later than max_delay included", func() bool { return es.Count() >= len(expectedIDs(all)) })
	e.settle()
	s := stats(t, port)
	p.stop()

	checkDocs(t, es, all)
	require.GreaterOrEqual(t, num(s, "teleportbeat", "audit", "late_events_rechecked"), 20.0)
	require.Contains(t, p.logs.String(), "Audit events found by the recheck")
	require.Contains(t, p.logs.String(), tooLate[0].ID, "said with their uids")
	t.Logf("RESULT later-than-max-delay: served %d (%d visible 80 s after their time, max_delay 1m, recheck 2m), stored %d, found by the recheck %.0f, recheck reads %.0f, lost 0",
		len(all), len(tooLate), es.Count(), num(s, "teleportbeat", "audit", "late_events_rechecked"), num(s, "teleportbeat", "audit", "late_recheck_read"))
}

// TestAQuietClusterIsNoClockSkew: a fresh start on a cluster whose newest
// event is minutes old (quiet, not skewed), then events at their own time:
// the beat measures no lag and warns about no clock.
func TestAQuietClusterIsNoClockSkew(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	es, out := esSetup(t)
	port := freePort(t)
	old := e.gen.Events(50, time.Now().Add(-4*time.Minute), 100*time.Millisecond) // quiet for over three minutes
	e.tp.Store.Add(old...)
	p := e.start(e.liveConfig("teleportbeat.yml", out+fmt.Sprintf("http.enabled: true\nhttp.host: 127.0.0.1\nhttp.port: %d\nteleportbeat.progress_interval: 3s\n", port)))
	waitFor(t, time.Minute, "the old events", func() bool { return es.Count() >= len(old) })
	stop := e.tp.Live(teleporttest.NewGenerator(301), 2)
	waitFor(t, 2*time.Minute, "the lag measured on new events", func() bool {
		s := stats(t, port)
		return s != nil && num(s, "teleportbeat", "audit", "teleport_lag_seconds") >= 0 && hasPath(s, "teleportbeat", "audit", "teleport_lag_seconds")
	})
	live := stop()
	waitFor(t, time.Minute, "the new events", func() bool { return es.Count() >= len(old)+len(live) })
	lag := num(stats(t, port), "teleportbeat", "audit", "teleport_lag_seconds")
	p.stop()
	require.Less(t, lag, 5.0, "no lag: the cluster was quiet, its clock is right")
	logs := p.logs.String()
	require.NotContains(t, logs, "behind this host's clock")
	require.NotContains(t, logs, "check the clocks")
	// At an audit log's rate (2 events/s) the progress line says so.
	var rates []float64
	for _, m := range regexp.MustCompile(`"events_per_second":\s*([0-9.]+)`).FindAllStringSubmatch(logs, -1) {
		r, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		rates = append(rates, r)
	}
	require.NotEmpty(t, rates)
	require.Greater(t, slices.Max(rates), 0.5, "a rate of 2 events/s shows: %v\n%s", rates, strings.Join(regexp.MustCompile(`[^\n]*Audit progress[^\n]*`).FindAllString(logs, -1), "\n"))
	t.Logf("RESULT quiet-start: newest event 4 min old at start, measured lag %.1f s, no clock warning", lag)
}

// hasPath reports whether a /stats document has a value at path.
func hasPath(m map[string]any, path ...string) bool {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = mm[p]; !ok {
			return false
		}
	}
	return true
}
