package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
