package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stats fetches libbeat's /stats document.
func stats(t *testing.T, port int) map[string]any {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats", port))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func num(m map[string]any, path ...string) float64 {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return -1
		}
		cur = mm[p]
	}
	f, _ := cur.(float64)
	return f
}

// TestStatsAndProgressLog: with http.enabled, /stats carries teleportbeat's
// own counters next to libbeat's, and progress and lag are logged.
func TestStatsAndProgressLog(t *testing.T) {
	e := newEnv(t)
	evs := e.addGenerated(3000)
	es, out := esSetup(t)
	port := freePort(t)
	p := e.start(e.config("teleportbeat.yml", out+fmt.Sprintf("http.enabled: true\nhttp.host: 127.0.0.1\nhttp.port: %d\nteleportbeat.progress_interval: 1s\n", port)))
	waitFor(t, 2*time.Minute, "every event in Elasticsearch", func() bool { return es.Count() >= len(evs) })
	waitFor(t, 30*time.Second, "the acknowledgements in /stats", func() bool {
		s := stats(t, port)
		return s != nil && num(s, "teleportbeat", "audit", "events_acked") == float64(len(evs))
	})
	s := stats(t, port)
	require.Equal(t, float64(len(evs)), num(s, "teleportbeat", "audit", "events_read"))
	require.Equal(t, float64(len(evs)), num(s, "teleportbeat", "audit", "events_published"))
	require.Positive(t, num(s, "teleportbeat", "audit", "pages"))
	// The newest event is an hour old.
	require.InDelta(t, 3600, num(s, "teleportbeat", "audit", "lag_seconds"), 120)
	require.Equal(t, float64(len(evs)), num(s, "libbeat", "output", "events", "acked"))
	p.waitLog(10*time.Second, `"message":"Audit progress"`)
	p.stop()
}

// TestMonitoringClusterGetsTheStats: monitoring.enabled ships libbeat's
// stats, teleportbeat's counters among them, to a monitoring cluster
// (.monitoring-beats-*), as every Beat does for Stack Monitoring.
func TestMonitoringClusterGetsTheStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.servedEvents(500)
	es, out := esSetup(t)
	mon := estest.New()
	monSrv := mon.Server()
	t.Cleanup(monSrv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			var paths []string
			for _, r := range mon.Requests() {
				paths = append(paths, r.Method+" "+r.Path)
			}
			t.Logf("monitoring cluster: %d bulk calls, %d documents, requests %v", mon.BulkCalls(), len(mon.Docs()), paths)
		}
	})
	p := e.start(e.config("teleportbeat.yml", out+fmt.Sprintf(`monitoring.enabled: true
monitoring.cluster_uuid: teleportbeat-e2e
monitoring.elasticsearch:
  hosts: [%q]
  metrics.period: 1s
  state.period: 1s
`, monSrv.URL)))
	want := len(expectedIDs(evs))
	waitFor(t, time.Minute, "every event", func() bool { return es.Count() >= want })
	var acked float64
	var types map[string]bool
	waitFor(t, time.Minute, "beats_stats with teleportbeat's counters at the monitoring cluster", func() bool {
		types = map[string]bool{}
		for _, d := range mon.Docs() {
			if !strings.HasPrefix(d.Index, ".monitoring-beats-") {
				continue
			}
			typ, _ := d.Source["type"].(string)
			types[typ] = true
			if typ == "beats_stats" {
				if v := num(d.Source, "beats_stats", "metrics", "teleportbeat", "audit", "events_acked"); v > acked {
					acked = v
				}
			}
		}
		return acked >= float64(want)
	})
	require.True(t, types["beats_state"], "the beat's state document too (%v)", types)
	p.stop()
	t.Logf("RESULT monitoring: %d documents at the monitoring cluster (%v), teleportbeat.audit.events_acked reached %.0f", len(mon.Docs()), types, acked)
}
