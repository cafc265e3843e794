package tests

// The fault-injection suite: each test ends by checking that every
// event the Teleport double served is stored, and reports how many were
// sent again. docs/reliability.md collects the figures.
//
// Tests that mostly wait (outages, slow pages) run in parallel with each
// other, after the serial tests, to keep the suite short.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// peakRSS returns the process's peak resident set size in MiB (VmHWM).
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

// replayed is the number of documents sent again: those Elasticsearch
// answered as duplicates of a stored _id (evs is kept for the callers'
// symmetry).
func replayed(es *estest.Recorder, _ []*teleporttest.Event) int {
	_, duplicates, _ := es.Stats()
	return duplicates
}

// TestKillLoop is fault 1: 100,000 events, SIGKILL ten times at random
// moments, restart each time: every event is stored.
func TestKillLoop(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(100000)
	es, out := esSetup(t)
	cfg := e.config("teleportbeat.yml", out+"  bulk_max_size: 500\nqueue.mem.flush.timeout: 0s\n")
	want := expectedIDs(evs)
	e.killLoop(es, cfg, len(want), 10, 2000)

	checkDocs(t, es, evs)
	received, _, rejected := es.Stats()
	require.Zero(t, rejected)
	t.Logf("RESULT kill-loop: served %d, stored %d distinct ids, sent %d, replayed %d after 10 SIGKILLs, lost 0",
		len(evs), es.Count(), received, replayed(es, evs))
}

// TestElasticsearchRefusesThenThrottles is fault 2: Elasticsearch answers
// 503 to every bulk request for 60 s, then 429 to 30% of the items for
// 30 s. The beat stops reading Teleport once its queue is full (memory stays
// bounded), and delivers everything when Elasticsearch recovers.
func TestElasticsearchRefusesThenThrottles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.servedEvents(20000)
	es, out := esSetup(t)
	var (
		mu    sync.Mutex
		phase = "503"
	)
	setPhase := func(p string) { mu.Lock(); phase = p; mu.Unlock() }
	getPhase := func() string { mu.Lock(); defer mu.Unlock(); return phase }
	es.SetBulkFault(func() int {
		if getPhase() == "503" {
			return 503
		}
		return 0
	})
	es.SetItemFault(func(string, []byte) int {
		if getPhase() == "429" && rand.Float64() < 0.3 {
			return 429
		}
		return 0
	})
	port := freePort(t)
	p := e.start(e.config("teleportbeat.yml", out+"  backoff.init: 500ms\n  backoff.max: 5s\n"+
		fmt.Sprintf("http.enabled: true\nhttp.port: %d\n", port)))

	// While Elasticsearch refuses, reading stops once the queue is full.
	var read []float64
	for i := 0; i < 3; i++ {
		time.Sleep(20 * time.Second)
		read = append(read, num(stats(t, port), "teleportbeat", "audit", "events_read"))
	}
	require.Zero(t, es.Count())
	require.Equal(t, read[1], read[2], "no more events read from Teleport while the output is blocked")
	require.Less(t, read[2], float64(len(evs)), "the beat does not buffer the whole audit log")
	p.waitLog(time.Second, "503 Service Unavailable")
	rssBlocked := p.peakRSS()

	setPhase("429")
	time.Sleep(30 * time.Second)
	setPhase("")
	want := expectedIDs(evs)
	waitFor(t, 3*time.Minute, "every event in Elasticsearch", func() bool { return es.Count() >= len(want) })
	e.settle()
	s := stats(t, port)
	rss := p.peakRSS()
	p.stop()

	checkDocs(t, es, evs)
	_, _, rejected := es.Stats()
	require.Zero(t, rejected)
	require.Zero(t, num(s, "libbeat", "output", "events", "dropped"), "nothing dropped")
	t.Logf("RESULT es-503-429: served %d, stored %d distinct ids, read during the outage %.0f (then reading stopped), replayed %d, lost 0, peak RSS %.0f MiB while blocked, %.0f MiB at the end",
		len(evs), es.Count(), read[2], replayed(es, evs), rssBlocked, rss)
}

// TestMappingErrorsGoToTheDeadLetterIndex is fault 3 with
// non_indexable_policy.dead_letter_index: documents Elasticsearch rejects
// (400) are stored in the dead letter index with the error and the original
// event, and the cursor moves on.
func TestMappingErrorsGoToTheDeadLetterIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.servedEvents(3000)
	es, out := esSetup(t)
	poisoned := poison(es, evs, 50)
	cfg := e.config("teleportbeat.yml", out+"  non_indexable_policy.dead_letter_index.index: teleportbeat-dlq\n")
	p := e.start(cfg)
	want := expectedIDs(evs)
	waitFor(t, 2*time.Minute, "every event stored", func() bool { return es.Count() >= len(want) })
	e.settle()
	p.stop()

	for id := range want {
		d, ok := es.Doc(id)
		require.True(t, ok, id)
		if poisoned[id] {
			require.Equal(t, "teleportbeat-dlq", d.Index, id)
			require.EqualValues(t, 400, d.Source["error.type"], id)
			require.Contains(t, d.Source["error.message"], "mapper_parsing_exception", id)
			require.Contains(t, d.Source["message"], id, "the original event is kept")
		} else {
			require.NotEqual(t, "teleportbeat-dlq", d.Index, id)
		}
	}
	// The cursor moved past the rejected events: a restart sends only what
	// is new.
	before, _, _ := es.Stats()
	fresh := e.gen.Events(100, time.Now().Add(-30*time.Second), 10*time.Millisecond)
	e.tp.Store.Add(fresh...)
	p = e.start(cfg)
	waitFor(t, time.Minute, "the new events", func() bool { return es.Count() >= len(want)+len(fresh) })
	e.settle()
	p.stop()
	after, _, _ := es.Stats()
	require.Equal(t, len(fresh), after-before)
	t.Logf("RESULT dead-letter: served %d, %d rejected with 400 and stored in teleportbeat-dlq, lost 0", len(evs), len(poisoned))
}

// TestMappingErrorsAreLoggedWithTheirUid is fault 3 with the default
// policy (drop): a document Elasticsearch rejects is logged with its uid
// and counted, and the cursor moves on.
func TestMappingErrorsAreLoggedWithTheirUid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.addGenerated(1000)
	es, out := esSetup(t)
	poisoned := poison(es, evs, 100)
	port := freePort(t)
	p := e.start(e.config("teleportbeat.yml", out+fmt.Sprintf("http.enabled: true\nhttp.port: %d\n", port)))
	want := expectedIDs(evs)
	waitFor(t, 2*time.Minute, "every other event stored", func() bool { return es.Count() >= len(want)-len(poisoned) })
	e.settle()
	s := stats(t, port)
	p.stop()

	// libbeat logs the rejected documents to its event log, a separate
	// file, so that event contents stay out of the main log.
	logs := readEventLogs(t, filepath.Join(e.dir, "logs"))
	for id := range poisoned {
		require.Contains(t, logs, id, "the rejected event's uid is logged")
	}
	require.Contains(t, logs, "dropping event")
	require.Equal(t, float64(len(poisoned)), num(s, "libbeat", "output", "events", "dropped"))
	require.Equal(t, float64(len(want)), num(s, "teleportbeat", "audit", "events_acked"), "the rejected events are done: the cursor moves on")
	t.Logf("RESULT drop-policy: served %d, %d rejected with 400, each logged with its uid in the event log and counted in libbeat.output.events.dropped, the rest stored", len(evs), len(poisoned))
}

func readEventLogs(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*events-data*"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "libbeat's event log in %s", dir)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		b.Write(data)
	}
	return b.String()
}

// poison makes Elasticsearch reject every nth event with a mapping error
// (400), except in the dead letter index, and returns their ids.
func poison(es *estest.Recorder, evs []*teleporttest.Event, every int) map[string]bool {
	poisoned := map[string]bool{}
	i := 0
	for id := range expectedIDs(evs) {
		if i%every == 0 {
			poisoned[id] = true
		}
		i++
	}
	es.SetItemFault(func(id string, src []byte) int {
		if poisoned[id] && !strings.Contains(string(src), `"error.type"`) {
			return 400
		}
		return 0
	})
	es.SetItemError(400, "mapper_parsing_exception", "failed to parse field [teleport.audit.code] of type [keyword]")
	return poisoned
}

var retryIn = regexp.MustCompile(`"retry_in":"([^"]+)"`)

// TestTeleportFaults is fault 4: every 5th search fails, every 7th loses
// its connection in the middle of the page, one page takes 30 s, then the
// Auth Service is gone for a minute. The beat recovers by itself, with a
// backoff capped at backoff.max (2 s here), and loses nothing.
func TestTeleportFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.servedEvents(5000)
	es, out := esSetup(t)
	e.tp.Faults.FailEvery(5)
	e.tp.Faults.CutEvery(7)
	p := e.start(e.config("teleportbeat.yml", out+"teleportbeat.audit.batch_size: 100\n"))
	want := expectedIDs(evs)
	waitFor(t, 3*time.Minute, "every event despite failing and cut searches", func() bool { return es.Count() >= len(want) })
	e.tp.Faults.FailEvery(0)
	e.tp.Faults.CutEvery(0)

	// One slow page: the events behind it arrive once it is answered.
	e.tp.Faults.SlowNext(1, 30*time.Second)
	slow := e.gen.Events(300, time.Now().Add(-20*time.Second), 10*time.Millisecond)
	e.tp.Store.Add(slow...)
	evs = append(evs, slow...)
	slowSince := time.Now()
	waitFor(t, 2*time.Minute, "the events behind the slow page", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	slowTook := time.Since(slowSince)

	// A minute without the Auth Service.
	e.tp.Stop()
	during := e.gen.Events(500, time.Now().Add(-30*time.Second), 10*time.Millisecond)
	e.tp.Store.Add(during...)
	evs = append(evs, during...)
	time.Sleep(time.Minute)
	require.NoError(t, e.tp.Restart())
	waitFor(t, 3*time.Minute, "the events of the outage", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	p.waitLog(10*time.Second, "Teleport audit search works again")
	e.settle()
	p.stop()
	checkDocs(t, es, evs)

	logs := p.logs.String()
	require.Contains(t, logs, "Teleport audit search failed; retrying")
	// The outage's failures name the address and the dial error.
	require.Contains(t, logs, fmt.Sprintf("connection refused at %s (dial tcp %s: connect: connection refused): is Teleport's Auth Service or Proxy listening there?", e.tp.Addr(), e.tp.Addr()))
	require.NotContains(t, logs, "connection refused at :")
	var waits []time.Duration
	for _, m := range retryIn.FindAllStringSubmatch(logs, -1) {
		d, err := time.ParseDuration(m[1])
		require.NoError(t, err)
		require.LessOrEqual(t, d, 2*time.Second, "the backoff is capped at teleportbeat.teleport.backoff.max")
		waits = append(waits, d)
	}
	// The jitter picks each wait between half the backoff and the backoff.
	require.GreaterOrEqual(t, slices.Max(waits), time.Second, "a minute's outage reaches the cap")
	t.Logf("RESULT teleport-faults: served %d, stored %d, replayed %d, lost 0; %d retries logged; the slow page held the events behind it for %s",
		len(evs), es.Count(), replayed(es, evs), len(waits), slowTook.Round(time.Second))
}

// TestIdentityExpiresWhileRunning is fault 5: the identity expires while
// the beat runs (the double refuses it from then on); the beat says so,
// and resumes on its own once a renewed identity file appears. The
// short-lived identity is handed over once the first events are stored,
// so that how fast the machine ships them does not matter: whenever the
// beat takes it up, it expires while the beat runs.
func TestIdentityExpiresWhileRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.addGenerated(1000)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out+"teleportbeat.teleport.reload_interval: 500ms\n"))
	waitFor(t, 2*time.Minute, "the first events", func() bool { return es.Count() >= len(first) })

	const renewed = "Teleport credentials renewed on disk; reconnecting with them"
	short, err := e.tp.NewIdentity(20 * time.Second)
	require.NoError(t, err)
	require.NoError(t, short.WriteIdentityFile(e.idFile))
	p.waitLogCount(time.Minute, renewed, 1)
	p.waitLog(time.Minute, "Teleport credentials have expired")
	p.waitLog(time.Minute, `"expires":"`+short.NotAfter.UTC().Format(time.RFC3339)+`"`)
	more := e.gen.Events(300, time.Now().Add(-20*time.Second), 10*time.Millisecond)
	e.tp.Store.Add(more...)
	// Three failed searches in a row: the expired identity reads nothing.
	p.waitLog(time.Minute, "Teleport audit search failed; retrying")
	p.waitLog(time.Minute, `"attempt":3`)
	require.Equal(t, len(first), es.Count(), "nothing read with an expired identity")

	fresh, err := e.tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	require.NoError(t, fresh.WriteIdentityFile(e.idFile))
	p.waitLogCount(time.Minute, renewed, 2)
	waitFor(t, 2*time.Minute, "the events after the renewal", func() bool { return es.Count() >= len(first)+len(more) })
	e.settle()
	p.stop()
	received, _, _ := es.Stats()
	require.Equal(t, len(first)+len(more), received, "nothing lost, nothing sent twice")
	t.Logf("RESULT identity-expiry: served %d, stored %d, sent %d (0 replayed, 0 lost) across the expiry and renewal", len(first)+len(more), es.Count(), received)
}

// TestCorruptRegistryStartsOver is fault 6: a registry damaged while the
// beat was down gives one clear error; the beat moves it aside and resumes
// from the backup of its position (the backup file beside the registry); with that
// damaged too, it reads again from start_time and Elasticsearch keeps one
// copy of each event. A torn transaction log (a crash in the middle of a
// write) is recovered by libbeat's registry itself, from the last complete
// entry.
func TestCorruptRegistryStartsOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.servedEvents(3000)
	es, out := esSetup(t)
	cfg := e.config("teleportbeat.yml", out)
	want := expectedIDs(evs)
	run := func(what string, done func() bool) *proc {
		p := e.start(cfg)
		waitFor(t, 2*time.Minute, what, done)
		e.settle()
		p.stop()
		return p
	}
	run("every event", func() bool { return es.Count() >= len(want) })
	store := filepath.Join(e.dir, "data", "registry", "teleportbeat")

	// A torn write at the end of the transaction log.
	log, err := os.OpenFile(filepath.Join(store, "log.json"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = log.WriteString(`{"op":"set","id":99}` + "\n" + `{"K":"teleport::audit::`)
	require.NoError(t, err)
	require.NoError(t, log.Close())
	before, _, _ := es.Stats()
	p := run("a run after the torn write", func() bool { return true })
	require.NotContains(t, p.logs.String(), "The registry cannot be read")
	after, _, _ := es.Stats()
	require.Equal(t, before, after, "the position survived the torn write: nothing sent again")

	// Garbage over the registry's metadata: the backup of the position is used.
	require.NoError(t, os.WriteFile(filepath.Join(store, "meta.json"), []byte("\x00\x00garbage"), 0o600))
	p = run("a run after the corruption", func() bool { return true })
	require.Contains(t, p.logs.String(), "The registry cannot be read; it was moved aside and reading resumes from the backup of the last acknowledged position")
	afterBackup, _, _ := es.Stats()
	require.Less(t, afterBackup-after, len(evs)/10, "resumed near the last position, not from the start")

	// Registry and backup both unreadable: from start_time again.
	store = filepath.Join(e.dir, "data", "registry", "teleportbeat")
	require.NoError(t, os.WriteFile(filepath.Join(store, "meta.json"), []byte("\x00\x00garbage"), 0o600))
	states, _ := filepath.Glob(filepath.Join(e.dir, "data", "registry", "teleportbeat-late", "*.state"))
	require.Len(t, states, 1)
	require.NoError(t, os.WriteFile(states[0], []byte("garbage"), 0o600))
	p = run("every event read again", func() bool { received, _, _ := es.Stats(); return received >= afterBackup+len(evs) })
	require.Contains(t, p.logs.String(), "The registry cannot be read, nor its backup; it was moved aside and reading starts over from teleportbeat.audit.start_time")
	matches, _ := filepath.Glob(filepath.Join(e.dir, "data", "registry.corrupt-*"))
	require.Len(t, matches, 2, "the damaged registries are kept for inspection")
	checkDocs(t, es, evs)
	final, _, _ := es.Stats()
	require.Equal(t, len(evs), final-afterBackup, "every event was read again")
	t.Logf("RESULT corrupt-registry: served %d, stored %d distinct ids, sent again after the corruption %d with the backup and %d without (all de-duplicated by _id), lost 0",
		len(evs), es.Count(), afterBackup-after, final-afterBackup)
}

// TestTwoInstances is fault 7, the supported high-availability setup: two
// beats with their own registries read the same cluster into the same
// Elasticsearch; one is killed and restarted repeatedly; each event is
// stored once, under its uid.
func TestTwoInstances(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(30000)
	es, out := esSetup(t)
	extra := out + "  bulk_max_size: 200\nqueue.mem.flush.timeout: 0s\n"
	stable := e.start(e.config("a.yml", extra), "--path.data", filepath.Join(e.dir, "data-a"))
	cfgB := e.config("b.yml", extra)
	want := expectedIDs(evs)
	for i := 0; i < 5; i++ {
		b := e.start(cfgB, "--path.data", filepath.Join(e.dir, "data-b"))
		time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
		b.kill()
	}
	b := e.start(cfgB, "--path.data", filepath.Join(e.dir, "data-b"))
	waitFor(t, 3*time.Minute, "every event", func() bool { return es.Count() >= len(want) })
	e.settle()
	stable.stop()
	b.stop()
	checkDocs(t, es, evs)
	received, _, _ := es.Stats()
	t.Logf("RESULT ha-two-instances: served %d, stored %d (each once), sent %d in all by the two instances, lost 0", len(evs), es.Count(), received)
}

// TestDiskFull is fault 8: path.data fills up while the beat runs. The
// beat says why it cannot record its position (/stats: registry_writable
// false; Elastic Agent: degraded), stops taking new events until it can,
// and goes on by itself once space returns; a crash while the disk is full
// replays only what was in flight and loses nothing.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	data := filepath.Join(e.dir, "smalldisk")
	require.NoError(t, os.MkdirAll(data, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs for path.data (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", data).Run() })

	evs := e.servedEvents(3000)
	es, out := esSetup(t)
	port := freePort(t)
	cfg := e.config("teleportbeat.yml", out+fmt.Sprintf("http.enabled: true\nhttp.port: %d\nteleportbeat.registry.flush: 0s\n", port))
	p := e.start(cfg, "--path.data", data)
	waitFor(t, 2*time.Minute, "the first events", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	writable := func() any {
		a, _ := stats(t, port)["teleportbeat"].(map[string]any)
		au, _ := a["audit"].(map[string]any)
		return au["registry_writable"]
	}

	fill := func() {
		f, err := os.Create(filepath.Join(data, "filler"))
		require.NoError(t, err)
		buf := make([]byte, 64<<10)
		for {
			if _, err := f.Write(buf); err != nil {
				require.ErrorContains(t, err, "no space left on device")
				break
			}
		}
		require.NoError(t, f.Close())
	}
	// fillUntilHeld fills the disk and serves new events until reading is
	// held: the registry's files may still have room in their last page,
	// so the first writes after the disk fills can succeed.
	fillUntilHeld := func() {
		fill()
		before := strings.Count(p.logs.String(), "Reading paused: the audit position cannot be persisted")
		deadline := time.Now().Add(time.Minute)
		for strings.Count(p.logs.String(), "Reading paused: the audit position cannot be persisted") == before {
			require.False(t, time.Now().After(deadline), "reading was not held within 1m of the disk filling up")
			// Timed now: ahead of anything the held reader has passed.
			more := e.gen.Events(50, time.Now(), 10*time.Millisecond)
			e.tp.Store.Add(more...)
			evs = append(evs, more...)
			time.Sleep(300 * time.Millisecond)
		}
	}

	fillUntilHeld()
	p.waitLog(time.Second, "Cannot persist the audit position")
	p.waitLog(time.Second, "no space left on device")
	waitFor(t, time.Minute, "registry_writable: false in /stats", func() bool { return writable() == false })
	waitFor(t, time.Minute, "the events in flight to be acknowledged", func() bool {
		return num(stats(t, port), "teleportbeat", "audit", "events_in_flight") == 0
	})

	// Held: events served now stay in Teleport while the disk is full.
	stored := es.Count()
	held := e.gen.Events(300, time.Now(), 10*time.Millisecond)
	e.tp.Store.Add(held...)
	evs = append(evs, held...)
	time.Sleep(3 * time.Second) // 15 poll intervals: without the hold they would be delivered
	require.Equal(t, stored, es.Count(), "nothing new is delivered while the position cannot be persisted")
	require.Less(t, stored, len(expectedIDs(evs)))

	// Space returns: the position is written again and reading resumes.
	require.NoError(t, os.Remove(filepath.Join(data, "filler")))
	p.waitLog(time.Minute, "The audit position is persisted again")
	p.waitLog(10*time.Second, "Reading resumed")
	waitFor(t, 3*time.Minute, "the events held while the disk was full", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	waitFor(t, time.Minute, "registry_writable: true in /stats", func() bool { return writable() == true })

	// Full again, and the beat crashes while reading is held: the restart
	// replays from the last recorded position.
	fillUntilHeld()
	p.kill()
	dupBefore := replayed(es, evs)
	require.NoError(t, os.Remove(filepath.Join(data, "filler")))
	p = e.start(cfg, "--path.data", data)
	waitFor(t, 3*time.Minute, "every event after the restart", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	e.settle()
	p.stop()
	checkDocs(t, es, evs)
	t.Logf("RESULT disk-full: served %d, stored %d, held while full then delivered %d, sent again %d before the crash and %d after it (the crash with a full disk), lost 0",
		len(evs), es.Count(), len(held), dupBefore, replayed(es, evs)-dupBefore)
}
