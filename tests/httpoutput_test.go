package tests

import (
	"crypto/tls"
	"crypto/x509"
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

	"github.com/teleportbeat/teleportbeat/internal/certs"
	"github.com/teleportbeat/teleportbeat/internal/deadletter"
)

// httpReceiver is what the event handler posts to (Fluentd's in_http,
// Logstash's http input): an HTTPS endpoint requiring client certificates.
type httpReceiver struct {
	mu       sync.Mutex
	byPath   map[string][]map[string]any
	requests int
	fail     int    // answer 503 to this many more requests
	poison   string // answer 400 to a batch holding this event id
}

func (h *httpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.fail > 0 {
		h.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if h.poison != "" && strings.Contains(string(body), h.poison) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var batch []map[string]any
	if err := json.Unmarshal(body, &batch); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.byPath[r.URL.Path] = append(h.byPath[r.URL.Path], batch...)
}

func (h *httpReceiver) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byPath[path])
}

// TestHTTPOutputPostsBatchesOverMutualTLS: the http output posts JSON
// batches to an HTTPS receiver with client certificates, retries when it
// is unavailable, sends session recordings to their own URL, and keeps in
// the dead-letter file (with a log naming it) an event the receiver
// refuses for good, delivering the others of its batch.
func TestHTTPOutputPostsBatchesOverMutualTLS(t *testing.T) {
	e := newEnv(t)
	evs := e.addGenerated(1000)
	recs := e.addSessions(2, 60)
	ca, err := certs.NewCA("fluentd CA", certs.Options{})
	require.NoError(t, err)
	srvPair, err := ca.Server("fluentd", "127.0.0.1")
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(srvPair.CertPEM, srvPair.KeyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	recv := &httpReceiver{byPath: map[string][]map[string]any{}, fail: 3}
	srv := httptest.NewUnstartedServer(recv)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	dir := filepath.Join(e.dir, "pki")
	caFile, _, err := ca.Write(dir, "ca")
	require.NoError(t, err)
	cl, err := ca.Client("teleportbeat")
	require.NoError(t, err)
	certFile, keyFile, err := cl.Write(dir, "client")
	require.NoError(t, err)

	out := fmt.Sprintf(`output.http:
  url: %q
  session_url: %q
  bulk_max_size: 50
  backoff.init: 100ms
  backoff.max: 500ms
  ssl.certificate_authorities: [%q]
  ssl.certificate: %q
  ssl.key: %q
teleportbeat.sessions.enabled: true
`, srv.URL+"/teleport.events", srv.URL+"/teleport.session", caFile, certFile, keyFile)
	cfgPath := e.config("teleportbeat.yml", out)
	p := e.start(cfgPath)
	sessionEvents := 0
	for _, r := range recs {
		for _, ev := range r.events {
			if ev.Type != "print" {
				sessionEvents++
			}
		}
	}
	audit := len(evs) + len(recs)
	waitFor(t, 2*time.Minute, "every event at the receiver", func() bool {
		return recv.count("/teleport.events") >= audit && recv.count("/teleport.session") >= sessionEvents
	})
	p.waitLog(10*time.Second, "http output: ")
	e.settle()
	require.Equal(t, audit, recv.count("/teleport.events"), "audit events once each")
	require.Equal(t, sessionEvents, recv.count("/teleport.session"))
	recv.mu.Lock()
	require.Less(t, recv.requests, audit/10, "events go in batches")
	recv.mu.Unlock()

	// An event the receiver refuses (400) is kept in the dead-letter file,
	// and named; the others of its batch are delivered.
	batch := e.gen.Events(10, time.Now().Add(-20*time.Second), time.Millisecond)
	id := batch[4].ID
	recv.mu.Lock()
	recv.poison = id
	recv.mu.Unlock()
	e.tp.Store.Add(batch...)
	p.waitLog(30*time.Second, "The HTTP receiver refuses an event; it is kept in the dead-letter file and not sent again unless `teleportbeat dead-letter replay` is run")
	p.waitLog(5*time.Second, id)
	waitFor(t, 30*time.Second, "the other events of the batch", func() bool { return recv.count("/teleport.events") >= audit+9 })
	p.stop()
	dead, err := deadletter.Read(filepath.Join(e.dir, "data", deadletter.Dir))
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, id, dead[0].EventID)
	require.Contains(t, dead[0].Reason, "answered 400")

	// `teleportbeat dead-letter replay` sends it again: refused again
	// while the receiver still refuses it (kept, with the new answer),
	// accepted once it takes it (and gone from the file).
	replay := func() (string, error) {
		out, err := exec.Command(beatBin, "dead-letter", "replay", "-c", cfgPath,
			"--path.home", e.dir, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs")).CombinedOutput()
		return string(out), err
	}
	msg, err := replay()
	require.Error(t, err, "%s", msg)
	require.Contains(t, msg, "1 dead-letter events sent: 0 accepted (0 of them stored already), 1 refused again")
	require.Contains(t, msg, id+": the HTTP receiver answered 400")
	dead, err = deadletter.Read(filepath.Join(e.dir, "data", deadletter.Dir))
	require.NoError(t, err)
	require.Len(t, dead, 1, "kept")
	require.Contains(t, dead[0].Reason, "replayed")
	recv.mu.Lock()
	recv.poison = ""
	recv.mu.Unlock()
	msg, err = replay()
	require.NoError(t, err, "%s", msg)
	require.Contains(t, msg, "1 dead-letter events sent: 1 accepted")
	require.Equal(t, audit+10, recv.count("/teleport.events"), "the refused event delivered")
	dead, err = deadletter.Read(filepath.Join(e.dir, "data", deadletter.Dir))
	require.NoError(t, err)
	require.Empty(t, dead, "what was accepted left the dead-letter file")
}
