package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/typedevents"
)

// leafCluster is a second Teleport double for e's beat: its own cluster
// name, version and credentials.
type leafCluster struct {
	tp     *teleporttest.Server
	idFile string
	gen    *teleporttest.Generator
}

func newLeaf(t *testing.T, dir string, tc teleporttest.Config) *leafCluster {
	t.Helper()
	tp, err := teleporttest.New(tc)
	require.NoError(t, err)
	t.Cleanup(tp.Stop)
	id, err := tp.NewIdentity(24 * time.Hour)
	require.NoError(t, err)
	l := &leafCluster{tp: tp, idFile: filepath.Join(dir, tc.ClusterName+".identity"), gen: teleporttest.NewGenerator(uint64(time.Now().UnixNano()) + 7)}
	require.NoError(t, id.WriteIdentityFile(l.idFile))
	l.gen.ClusterName = tc.ClusterName
	return l
}

// clustersConfig writes a teleportbeat.yml reading the root (e's double)
// and the leaf from one beat: e.config's settings (its teleport section is
// then only the entries' defaults), and the list.
func (e *env) clustersConfig(name string, leaf *leafCluster, extra string) string {
	e.t.Helper()
	return e.config(name, fmt.Sprintf(`teleportbeat.clusters:
  - teleport.addr: [%q]
    teleport.identity_file: %q
  - teleport.addr: [%q]
    teleport.identity_file: %q
%s`, e.tp.Addr(), e.idFile, leaf.tp.Addr(), leaf.idFile, extra))
}

// storedOnce checks that every served event is stored, under its uid,
// once, with the cluster it came from in teleport.cluster.
func storedOnce(t *testing.T, docs map[string]string, served map[string]string) {
	t.Helper()
	for id, cluster := range served {
		got, ok := docs[id]
		require.True(t, ok, "event %s of %s stored", id, cluster)
		require.Equal(t, cluster, got, "teleport.cluster of %s", id)
	}
	require.Len(t, docs, len(served), "nothing else stored")
}

// TestSeveralClustersFromOneBeat: a beat reading one cluster is given a
// second (an older Teleport without the export API): the first keeps its
// position (nothing sent again) and the second is read from its start;
// one cluster going down leaves the other flowing; a restart of the beat
// resumes both; /stats has each cluster's figures; every document says
// its cluster.
func TestSeveralClustersFromOneBeat(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, teleporttest.Config{ClusterName: "root.example.com"})
	e.gen.ClusterName = "root.example.com"
	leaf := newLeaf(t, e.dir, teleporttest.Config{ClusterName: "leaf-eu", Version: "13.1.3", Typed: typedevents.OneOf})
	served := map[string]string{}
	serve := func(tp *teleporttest.Server, cluster string, evs []*teleporttest.Event) {
		tp.Store.Add(evs...)
		for _, ev := range evs {
			served[ev.ID] = cluster
		}
	}
	past := func(g *teleporttest.Generator, n int) []*teleporttest.Event {
		return g.Events(n, time.Now().Add(-26*time.Hour), 50*time.Second)
	}
	serve(e.tp, "root.example.com", past(e.gen, 1500))
	serve(leaf.tp, "leaf-eu", past(leaf.gen, 900))
	es, out := esSetup(t)
	docs := func() map[string]string {
		m := map[string]string{}
		for _, d := range es.Docs() {
			tp, _ := d.Source["teleport"].(map[string]any)
			c, _ := tp["cluster"].(string)
			m[d.ID] = c
		}
		return m
	}
	count := func(cluster string) int {
		n := 0
		for _, c := range docs() {
			if c == cluster {
				n++
			}
		}
		return n
	}

	// One cluster, as teleportbeat.yml has it today.
	p := e.start(e.config("one.yml", out))
	waitFor(t, 2*time.Minute, "the root's events", func() bool { return count("root.example.com") >= 1500 })
	e.settle()
	p.stop()
	_, dupsBefore, _ := es.Stats()

	// Two clusters: the root resumes where it was, the leaf is read whole.
	port := freePort(t)
	cfg := e.clustersConfig("two.yml", leaf, out+fmt.Sprintf("http.enabled: true\nhttp.host: 127.0.0.1\nhttp.port: %d\n", port))
	p = e.start(cfg)
	waitFor(t, 2*time.Minute, "the leaf's events", func() bool { return count("leaf-eu") >= 900 })
	p.waitLog(time.Minute, "Teleport has no audit export API here") // the leaf's version
	_, dups, _ := es.Stats()
	require.Equal(t, dupsBefore, dups, "the root's position was kept: nothing sent again")

	// The leaf goes down; the root keeps flowing.
	leaf.tp.Stop()
	serve(e.tp, "root.example.com", e.gen.Events(200, time.Now().Add(-time.Minute), 100*time.Millisecond))
	waitFor(t, 2*time.Minute, "the root's new events while the leaf is down", func() bool { return count("root.example.com") >= 1700 })
	require.NoError(t, leaf.tp.Restart())
	serve(leaf.tp, "leaf-eu", leaf.gen.Events(100, time.Now().Add(-time.Minute), 100*time.Millisecond))
	waitFor(t, 2*time.Minute, "the leaf's events after its restart", func() bool { return count("leaf-eu") >= 1000 })

	// Each cluster's figures, under its name.
	s := stats(t, port)
	require.GreaterOrEqual(t, num(s, "teleportbeat", "clusters", "root_example_com", "audit", "events_acked"), 200.0, "%v", s["teleportbeat"])
	require.GreaterOrEqual(t, num(s, "teleportbeat", "clusters", "leaf-eu", "audit", "events_acked"), 1000.0, "%v", s["teleportbeat"])
	p.stop()

	// A restart of the beat resumes both.
	serve(e.tp, "root.example.com", e.gen.Events(50, time.Now().Add(-time.Minute), 100*time.Millisecond))
	serve(leaf.tp, "leaf-eu", leaf.gen.Events(50, time.Now().Add(-time.Minute), 100*time.Millisecond))
	p = e.start(cfg)
	waitFor(t, 2*time.Minute, "the events of both served while the beat was stopped", func() bool {
		return count("root.example.com") >= 1750 && count("leaf-eu") >= 1050
	})
	e.settle()
	p.stop()
	storedOnce(t, docs(), served)
}

// TestAClusterListedTwiceIsReadOnce: two entries that reach one cluster
// by two of its addresses: the second is refused once connected, with
// both entries named, and every event is stored once.
func TestAClusterListedTwiceIsReadOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.addGenerated(300)
	es, out := esSetup(t)
	addr := e.tp.Addr()
	other := strings.Replace(addr, "127.0.0.1", "localhost", 1)
	require.NotEqual(t, addr, other)
	copyCfg := filepath.Join(e.dir, "copy.yml")
	require.NoError(t, os.WriteFile(copyCfg, []byte(fmt.Sprintf(`teleportbeat.audit.start_time: "2019-01-01T00:00:00Z"
teleportbeat.audit.poll_interval: 200ms
teleportbeat.clusters:
  - teleport.addr: [%q]
    teleport.identity_file: %q
  - teleport.addr: [%q]
    teleport.identity_file: %q
%s`, addr, e.idFile, other, e.idFile, out)), 0o600))
	p := e.start(copyCfg)
	p.waitLog(time.Minute, "reads already: each cluster is read once")
	waitFor(t, 2*time.Minute, "every event", func() bool { return es.Count() >= len(evs) })
	e.settle()
	p.stop()
	require.Len(t, es.Docs(), len(expectedIDs(evs)))
	_, dups, _ := es.Stats()
	require.Zero(t, dups, "read once")
}

// TestTestTeleportChecksEveryCluster: `test teleport` checks each cluster
// of teleportbeat.clusters under its entry, and fails with the one that
// does not work while saying the other is fine.
func TestTestTeleportChecksEveryCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leaf := newLeaf(t, e.dir, teleporttest.Config{ClusterName: "leaf-eu", Version: "13.1.3", Typed: typedevents.OneOf})
	cfg := e.clustersConfig("teleportbeat.yml", leaf, "output.console.enabled: true\nteleportbeat.teleport.dial_timeout: 3s\n")
	run := func() (string, error) {
		out, err := exec.Command(beatBin, "test", "teleport", "-c", cfg, "--path.home", e.dir, "--path.data", filepath.Join(e.dir, "data")).CombinedOutput()
		return string(out), err
	}
	out, err := run()
	require.NoError(t, err, out)
	require.Contains(t, out, "teleportbeat.clusters.0 ("+e.tp.Addr()+"):")
	require.Contains(t, out, "cluster teleport.example.com, Teleport 18.0.0-dev")
	require.Contains(t, out, "teleportbeat.clusters.1 ("+leaf.tp.Addr()+"):")
	require.Contains(t, out, "cluster leaf-eu, Teleport 13.1.3")
	require.Contains(t, out, "export API (past days)...      WARN", "the leaf's version has none")

	leaf.tp.Stop()
	out, err = run()
	require.Error(t, err, out)
	require.Contains(t, out, "cluster teleport.example.com, Teleport 18.0.0-dev", "the root is still checked")
	require.Regexp(t, `connect to `+regexp.QuoteMeta(leaf.tp.Addr())+`\.\.\.\s+ERROR`, out)
}
