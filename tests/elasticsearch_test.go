package tests

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

const e2eEvents = 20000

// esSetup starts a recording Elasticsearch and returns the output config.
func esSetup(t *testing.T) (*estest.Recorder, string) {
	t.Helper()
	es := estest.New()
	srv := es.Server()
	t.Cleanup(srv.Close)
	return es, fmt.Sprintf("output.elasticsearch:\n  hosts: [%q]\n", srv.URL)
}

// servedEvents serves the sample events plus generated ones, n in all.
func (e *env) servedEvents(n int) []*teleporttest.Event {
	corpus := e.addCorpus()
	return append(corpus, e.addGenerated(n-len(corpus))...)
}

// settle waits until the beat has searched Teleport a few more times
// after the condition held, so that anything still to come would have come.
func (e *env) settle() {
	e.t.Helper()
	start := e.tp.SearchCalls()
	waitFor(e.t, 30*time.Second, "three more polls of Teleport", func() bool { return e.tp.SearchCalls() >= start+3 })
}

// checkDocs verifies every served event is stored under its _id, with the
// right @timestamp and ECS fields, and that nothing else is stored. Events
// that share a uid with another, different event (the sample corpus has
// some) are stored once each where the beat tells them apart (on one page
// of the audit log, or within the late-event horizon: under
// <uid>#<content hash>, tagged teleport_uid_shared), and otherwise the
// first is kept (Elasticsearch answers 409 to the second).
func checkDocs(t *testing.T, es *estest.Recorder, evs []*teleporttest.Event) {
	t.Helper()
	want := expectedIDs(evs)
	docs := es.Docs()
	require.GreaterOrEqual(t, len(docs), len(want), "a document per distinct uid at least")
	require.LessOrEqual(t, len(docs), len(evs), "no more documents than events served")
	seen := map[string]bool{}
	for _, d := range docs {
		uid, shared, _ := strings.Cut(d.ID, "#")
		served, ok := want[uid]
		require.True(t, ok, "document %s was not served", d.ID)
		seen[uid] = true
		ts, err := time.Parse(time.RFC3339Nano, d.Source["@timestamp"].(string))
		require.NoError(t, err)
		ev := d.Source["event"].(map[string]any)
		audit := d.Source["teleport"].(map[string]any)["audit"].(map[string]any)
		// Events sharing an id differ: find the one stored.
		var match *teleporttest.Event
		for _, e := range served {
			if e.Time.Truncate(time.Millisecond).Equal(ts) && e.Type == ev["action"] {
				match = e
			}
		}
		require.NotNil(t, match, "document %s: no served event with that id has @timestamp %s and type %v", d.ID, ts, ev["action"])
		require.Equal(t, uid, ev["id"])
		if shared != "" {
			require.Greater(t, len(served), 1, "document %s: stored apart, but its uid is not shared", d.ID)
			require.Contains(t, d.Source["tags"], "teleport_uid_shared")
		}
		require.Equal(t, "teleport", ev["module"])
		require.Equal(t, "teleportbeat.audit", ev["dataset"])
		require.Equal(t, match.Type, audit["event"])
		// The ECS release the template follows, not libbeat's stamp; the
		// time Elasticsearch took the document, from the pipeline setup
		// installs (the detection rules search by it).
		require.Equal(t, ecs.ECSVersion, d.Source["ecs"].(map[string]any)["version"], "document %s", d.ID)
		ingested, ok := ev["ingested"].(string)
		require.True(t, ok, "document %s has event.ingested", d.ID)
		_, err = time.Parse(time.RFC3339Nano, ingested)
		require.NoError(t, err, "event.ingested %q", ingested)
	}
	require.Len(t, seen, len(want), "every uid served is stored")
}

// TestShipsEveryEventToElasticsearch: 20,000
// events (the sample corpus and generated ones) reach Elasticsearch, each
// under its uid with the right @timestamp, and nothing else does.
func TestShipsEveryEventToElasticsearch(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(e2eEvents)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out))

	want := expectedIDs(evs)
	waitFor(t, 3*time.Minute, "every event in Elasticsearch", func() bool { return es.Count() >= len(want) })
	e.settle()
	p.stop()

	checkDocs(t, es, evs)
	received, duplicates, rejected := es.Stats()
	require.Zero(t, rejected)
	require.Equal(t, len(evs), received, "every served event was sent exactly once")
	// The corpus reuses some uids: events the beat could not tell apart
	// were answered 409 (Elasticsearch keeps the first of a uid).
	require.Equal(t, len(evs)-es.Count(), duplicates)
}

// killLoop runs the beat with cfg and SIGKILLs it n times, each once at
// least margin and at most want-margin documents are stored, restarting it
// each time; then it runs the beat until all want documents are stored and
// stops it. It returns the last run.
func (e *env) killLoop(es *estest.Recorder, cfg string, want, n, margin int) *proc {
	t := e.t
	t.Helper()
	var kills []int
	for i := 0; i < n; i++ {
		kills = append(kills, margin+rand.IntN(want-2*margin))
	}
	slices.Sort(kills)
	for i, at := range kills {
		p := e.start(cfg)
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d documents before kill %d", at, i+1), func() bool { return es.Count() >= at })
		p.kill()
		t.Logf("kill %d: SIGKILL with %d of %d documents stored", i+1, es.Count(), want)
	}
	p := e.start(cfg)
	waitFor(t, 3*time.Minute, "every event in Elasticsearch after the kills", func() bool { return es.Count() >= want })
	e.settle()
	p.stop()
	return p
}

// TestNoEventLostWhenKilled: SIGKILL three times at random
// points while shipping, restart each time; every event arrives and the
// replays are counted.
func TestNoEventLostWhenKilled(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(e2eEvents)
	es, out := esSetup(t)
	// Small batches so that shipping takes long enough to be interrupted.
	cfg := e.config("teleportbeat.yml", out+"  bulk_max_size: 200\nqueue.mem.flush.timeout: 0s\n")
	want := expectedIDs(evs)
	e.killLoop(es, cfg, len(want), 3, 1000)

	checkDocs(t, es, evs)
	received, _, _ := es.Stats()
	replayed := received - len(evs)
	t.Logf("served %d events, %d distinct ids stored, %d sent in all, %d replayed after 3 SIGKILLs, 0 lost", len(evs), es.Count(), received, replayed)
	require.GreaterOrEqual(t, replayed, 0)
}

// TestResumesWithExactlyTheNewEvents: after a clean stop,
// 1,000 new events are served; the restarted beat sends exactly those.
func TestResumesWithExactlyTheNewEvents(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(e2eEvents)
	es, out := esSetup(t)
	cfg := e.config("teleportbeat.yml", out)

	p := e.start(cfg)
	waitFor(t, 3*time.Minute, "every event in Elasticsearch", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	e.settle()
	p.stop()
	before, _, _ := es.Stats()

	fresh := e.gen.Events(1000, time.Now().Add(-40*time.Second), 20*time.Millisecond)
	e.tp.Store.Add(fresh...)
	evs = append(evs, fresh...)

	p = e.start(cfg)
	p.waitLog(30*time.Second, "Reading the Teleport audit log")
	waitFor(t, time.Minute, "the new events in Elasticsearch", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	e.settle()
	p.stop()

	after, _, _ := es.Stats()
	require.Equal(t, 1000, after-before, "exactly the 1,000 new events were sent")
	checkDocs(t, es, evs)
}

// TestSurvivesTeleportOutage: Teleport goes away for 20
// seconds and comes back; the beat reconnects by itself and loses nothing.
func TestSurvivesTeleportOutage(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(2000)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out))
	waitFor(t, 2*time.Minute, "the first events in Elasticsearch", func() bool { return es.Count() >= len(expectedIDs(evs)) })

	e.tp.Stop()
	// Events keep happening while the Auth Service is unreachable.
	during := e.gen.Events(500, time.Now().Add(-30*time.Second), 10*time.Millisecond)
	e.tp.Store.Add(during...)
	evs = append(evs, during...)
	p.waitLog(30*time.Second, "Teleport audit search failed; retrying")
	time.Sleep(20 * time.Second) // the outage itself
	require.NoError(t, e.tp.Restart())

	waitFor(t, time.Minute, "the events of the outage in Elasticsearch", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	p.waitLog(10*time.Second, "Teleport audit search works again")
	e.settle()
	p.stop()
	checkDocs(t, es, evs)
}
