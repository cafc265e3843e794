package tests

// Receivers that refuse: nothing is dropped
// because an output answered no. Refusals that can pass are retried until
// they do; an event refused alone as too large is delivered truncated and
// kept whole in the dead-letter file; an event the receiver can never
// take is kept in the dead-letter file, with its uid.

import (
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/shrink"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// statusReceiver answers what status() says; with 200, it takes the batch.
// A body above maxBody is answered 413, as a proxy with a limit does.
type statusReceiver struct {
	mu      sync.Mutex
	status  func() int
	maxBody int
	got     map[string]map[string]any // event.id -> document
	answers map[int]int
}

func (h *statusReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	code := http.StatusOK
	if h.status != nil {
		code = h.status()
	}
	if h.maxBody > 0 && len(body) > h.maxBody {
		code = http.StatusRequestEntityTooLarge
	}
	h.answers[code]++
	if code == http.StatusFound {
		w.Header().Set("Location", "/elsewhere")
	}
	if code != http.StatusOK {
		w.WriteHeader(code)
		return
	}
	var batch []map[string]any
	if err := json.Unmarshal(body, &batch); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, d := range batch {
		id := d["event"].(map[string]any)["id"].(string)
		h.got[id] = d
	}
}

func (h *statusReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func newStatusReceiver(t *testing.T) (*statusReceiver, string) {
	h := &statusReceiver{got: map[string]map[string]any{}, answers: map[int]int{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL + "/teleport.events"
}

// TestHTTPOutputRetriesEveryRefusalThatCanPass is case 4: a receiver that
// answers 403 for 20 s (a rotated credential), then 401, 404 and a 302
// redirect for 5 s each, then takes everything: all events arrive, and
// none is dropped.
func TestHTTPOutputRetriesEveryRefusalThatCanPass(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.addGenerated(2000)
	recv, url := newStatusReceiver(t)
	start := time.Now()
	recv.status = func() int {
		switch since := time.Since(start); {
		case since < 20*time.Second:
			return http.StatusForbidden
		case since < 25*time.Second:
			return http.StatusUnauthorized
		case since < 30*time.Second:
			return http.StatusNotFound
		case since < 35*time.Second:
			return http.StatusFound
		}
		return http.StatusOK
	}
	p := e.start(e.config("teleportbeat.yml", fmt.Sprintf("output.http:\n  url: %q\n  backoff.init: 200ms\n  backoff.max: 2s\n", url)))
	waitFor(t, 3*time.Minute, "every event at the receiver", func() bool { return recv.count() >= len(evs) })
	e.settle()
	p.stop()
	require.Equal(t, len(evs), recv.count())
	for _, ev := range evs {
		_, ok := recv.got[ev.ID]
		require.True(t, ok, ev.ID)
	}
	require.Contains(t, p.logs.String(), "The HTTP receiver refuses the batch; it is retried until the receiver takes it")
	dead, err := deadletter.Read(filepath.Join(e.dir, "data", deadletter.Dir))
	require.NoError(t, err)
	require.Empty(t, dead)
	delivered := recv.count()
	recv.mu.Lock()
	answers := fmt.Sprint(recv.answers)
	recv.mu.Unlock()
	t.Logf("RESULT http-refusals: served %d, delivered %d, answers %s, lost 0, dead-lettered 0", len(evs), delivered, answers)
}

// bigEvent is a database query event with a random (incompressible) query
// of size bytes.
func bigEvent(t *testing.T, g *teleporttest.Generator, size int) *teleporttest.Event {
	t.Helper()
	raw := make([]byte, size*3/4)
	_, _ = crand.Read(raw)
	f := g.Event(time.Now().Add(-time.Hour))
	f["event"], f["code"] = "db.session.query", "TDB02I"
	f["db_query"] = base64.StdEncoding.EncodeToString(raw)
	f["db_user"] = "alice"
	ev, err := teleporttest.NewEvent(f)
	require.NoError(t, err)
	return ev
}

// TestTooLargeEventsAreTruncatedAndKept is case 5: one event of 2 MB behind
// receivers with a 1 MiB body limit (an HTTP receiver, and Elasticsearch
// behind a proxy). Each output delivers it truncated (tagged) under its
// uid, keeps it whole in the dead-letter file, and logs its uid; the other
// events arrive as usual.
func TestTooLargeEventsAreTruncatedAndKept(t *testing.T) {
	t.Parallel()
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		evs := e.addGenerated(500)
		big := bigEvent(t, e.gen, 2<<20)
		e.tp.Store.Add(big)
		recv, url := newStatusReceiver(t)
		recv.maxBody = 1 << 20
		p := e.start(e.config("teleportbeat.yml", fmt.Sprintf("output.http:\n  url: %q\n  backoff.init: 200ms\n  backoff.max: 2s\n", url)))
		waitFor(t, 2*time.Minute, "every event at the receiver", func() bool { return recv.count() >= len(evs)+1 })
		e.settle()
		p.stop()
		recv.mu.Lock()
		doc := recv.got[big.ID]
		recv.mu.Unlock()
		checkTruncated(t, e, p, doc, big, "http")
	})
	t.Run("elasticsearch behind a proxy", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		evs := e.addGenerated(500)
		big := bigEvent(t, e.gen, 2<<20)
		e.tp.Store.Add(big)
		es, out := esSetup(t)
		es.SetMaxBodyBytes(1 << 20)
		cfg := e.config("teleportbeat.yml", out)
		p := e.start(cfg)
		waitFor(t, 2*time.Minute, "every event in Elasticsearch", func() bool { return es.Count() >= len(evs)+1 })
		e.settle()
		p.stop()
		d, ok := es.Doc(big.ID)
		require.True(t, ok, "the big event is indexed under its uid")
		require.Greater(t, es.TooLarge(), 0, "the proxy refused requests")
		checkTruncated(t, e, p, d.Source, big, "elasticsearch")
		// libbeat's "The batch has been dropped" would say the event was
		// lost; it was sent again truncated, which the log says instead.
		require.NotContains(t, p.logs.String(), "The batch has been dropped")

		// Replayed once the proxy takes it: Elasticsearch has its uid
		// (the truncated form; a data stream takes no overwrite), so it
		// leaves the dead-letter file as stored.
		es.SetMaxBodyBytes(0)
		msg, err := exec.Command(beatBin, "dead-letter", "replay", "-c", cfg,
			"--path.home", e.dir, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs")).CombinedOutput()
		require.NoError(t, err, "%s", msg)
		require.Contains(t, string(msg), "1 dead-letter events sent: 1 accepted (1 of them stored already), 0 refused again")
		dead, err := deadletter.Read(filepath.Join(e.dir, "data", deadletter.Dir))
		require.NoError(t, err)
		require.Empty(t, dead)
	})
}

func checkTruncated(t *testing.T, e *env, p *proc, doc map[string]any, big *teleporttest.Event, output string) {
	t.Helper()
	require.NotNil(t, doc, "delivered")
	require.Contains(t, doc["tags"], shrink.Tag)
	tp := doc["teleport"].(map[string]any)
	require.Equal(t, "alice", tp["audit"].(map[string]any)["db_user"], "small fields are kept")
	require.Contains(t, tp["audit"].(map[string]any)["db_query"], "[truncated by teleportbeat: ")
	require.Contains(t, fmt.Sprint(tp["truncated"]), "teleport.audit.db_query")
	dead, err := deadletter.Read(filepath.Join(e.dir, "data", deadletter.Dir))
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, big.ID, dead[0].EventID)
	require.Equal(t, output, dead[0].Output)
	require.True(t, strings.Contains(string(dead[0].Doc), big.Proto().GetUnstructured().GetFields()["db_query"].GetStringValue()), "kept whole")
	require.Contains(t, p.logs.String(), big.ID)
	t.Logf("RESULT too-large-%s: one 2 MB event behind a 1 MiB body limit: delivered truncated to %s, kept whole in %s, lost 0", output, fmt.Sprint(tp["truncated"]), deadletter.Dir)
}
