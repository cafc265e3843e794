package tests

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	lumber "github.com/elastic/go-lumber/server/v2"

	"github.com/teleportbeat/teleportbeat/internal/certs"
)

// lumberServer is Logstash's beats input as far as the protocol goes:
// go-lumber's v2 server, requiring client certificates signed by ca.
type lumberServer struct {
	addr string

	mu     sync.Mutex
	events []map[string]any
}

func startLumber(t *testing.T, ca *certs.CA) *lumberServer {
	t.Helper()
	srvPair, err := ca.Server("logstash", "127.0.0.1", "localhost")
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(srvPair.CertPEM, srvPair.KeyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// go-lumber applies its TLS option only to listeners it makes itself.
	srv, err := lumber.NewWithListener(tls.NewListener(l, &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}))
	require.NoError(t, err)
	ls := &lumberServer{addr: l.Addr().String()}
	go func() {
		for b := range srv.ReceiveChan() {
			ls.mu.Lock()
			for _, ev := range b.Events {
				if m, ok := ev.(map[string]any); ok {
					ls.events = append(ls.events, m)
				}
			}
			ls.mu.Unlock()
			b.ACK()
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return ls
}

func (l *lumberServer) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func (l *lumberServer) ids() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, ev := range l.events {
		e, _ := ev["event"].(map[string]any)
		meta, _ := ev["@metadata"].(map[string]any)
		id, _ := e["id"].(string)
		// Logstash can use @metadata._id as the document id.
		if metaID, _ := meta["_id"].(string); id != "" && metaID == id {
			out[id]++
		}
	}
	return out
}

func logstashOutput(addr, caFile, certFile, keyFile string) string {
	return fmt.Sprintf(`output.logstash:
  hosts: [%q]
  ssl.certificate_authorities: [%q]
  ssl.certificate: %q
  ssl.key: %q
`, addr, caFile, certFile, keyFile)
}

// TestShipsEveryEventToLogstashOverMutualTLS: the same
// through the Logstash output (the beats protocol) with mutual TLS, and a
// client whose certificate the server does not trust is refused.
func TestShipsEveryEventToLogstashOverMutualTLS(t *testing.T) {
	e := newEnv(t)
	evs := e.servedEvents(e2eEvents)
	ca, err := certs.NewCA("logstash CA", certs.Options{})
	require.NoError(t, err)
	ls := startLumber(t, ca)
	dir := filepath.Join(e.dir, "pki")
	caFile, _, err := ca.Write(dir, "ca")
	require.NoError(t, err)
	client, err := ca.Client("teleportbeat")
	require.NoError(t, err)
	certFile, keyFile, err := client.Write(dir, "client")
	require.NoError(t, err)

	p := e.start(e.config("teleportbeat.yml", logstashOutput(ls.addr, caFile, certFile, keyFile)))
	waitFor(t, 3*time.Minute, "every event at Logstash", func() bool { return ls.count() >= len(evs) })
	e.settle()
	p.stop()

	require.Equal(t, len(evs), ls.count(), "every event once, nothing else")
	got := ls.ids()
	for id, served := range expectedIDs(evs) {
		require.Equal(t, len(served), got[id], "event id %s (with @metadata._id)", id)
	}

	// A client certificate from another CA is refused: nothing arrives.
	other, err := certs.NewCA("rogue CA", certs.Options{})
	require.NoError(t, err)
	rogue, err := other.Client("teleportbeat")
	require.NoError(t, err)
	rogueCert, rogueKey, err := rogue.Write(dir, "rogue")
	require.NoError(t, err)
	e2 := newEnv(t)
	e2.addGenerated(100)
	ls2 := startLumber(t, ca)
	p2 := e2.start(e2.config("teleportbeat.yml", logstashOutput(ls2.addr, caFile, rogueCert, rogueKey)))
	p2.waitLog(time.Minute, "Failed to publish events caused by")
	p2.stop()
	require.Zero(t, ls2.count(), "the server refused the client")
}
