package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/certs"
	"github.com/teleportbeat/teleportbeat/internal/rules"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
)

// respondCerts writes what README's response endpoint example names into
// dir: the endpoint's certificate and key, the CA that signs it and
// Kibana's client certificate (respond-ca.crt), and that client's pair.
func respondCerts(t *testing.T, dir string) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA("teleportbeat respond CA", certs.Options{Type: certs.ECDSA})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "respond-ca.crt"), ca.CertPEM, 0o644))
	server, err := ca.Server("teleportbeat", "localhost", "127.0.0.1")
	require.NoError(t, err)
	_, _, err = server.Write(dir, "respond")
	require.NoError(t, err)
	kibana, err := ca.Client("kibana")
	require.NoError(t, err)
	_, _, err = kibana.Write(dir, "kibana")
	require.NoError(t, err)
	return ca
}

// kibanaClient is Kibana's side of the endpoint, from respondCerts' files
// in dir: its client certificate, and trust in the endpoint's. (No
// timeout: a test that holds Teleport holds the answer.)
func kibanaClient(t *testing.T, dir string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dir, "respond-ca.crt"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "kibana.crt"), filepath.Join(dir, "kibana.key"))
	require.NoError(t, err)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}, ServerName: "localhost", MinVersion: tls.VersionTLS12}}}
}

// readmeCurl is README's curl example of the response endpoint, as
// written.
func readmeCurl(t *testing.T) string {
	return readmeBlock(t, "<!-- respond: curl -->\n```sh\n")
}

// readmeBlock is the README block after marker, as written.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), marker)
	require.True(t, ok, "README has %q", marker)
	block, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	return block
}

// TestAnAlertLocksTheUserInTeleport: README's curl example, run as written
// against a beat with the response endpoint (the double as Teleport),
// locks the user with the TTL and the alert in the message; Teleport's
// lock.created, by teleportbeat's identity, is shipped; a client of
// another CA and a protected user are refused; shipping goes on.
func TestAnAlertLocksTheUserInTeleport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	respondCerts(t, e.dir)
	evs := e.addGenerated(300)
	es, out := esSetup(t)
	port, statsPort := freePort(t), freePort(t)
	cfg := e.config("teleportbeat.yml", out+fmt.Sprintf(`teleportbeat.respond:
  enabled: true
  listen: "127.0.0.1:%d"
  ssl.certificate: %s/respond.crt
  ssl.key: %s/respond.key
  ssl.certificate_authorities: ["%s/respond-ca.crt"]
  never_lock.users: ["breakglass"]
http.enabled: true
http.host: 127.0.0.1
http.port: %d
`, port, e.dir, e.dir, e.dir, statsPort))
	p := e.start(cfg)
	p.waitLog(time.Minute, "Response endpoint listening")

	curl := strings.NewReplacer("/etc/teleportbeat/", e.dir+"/", "teleportbeat.example.com:8443", fmt.Sprintf("localhost:%d", port)).Replace(readmeCurl(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	answer, err := exec.CommandContext(ctx, "bash", "-c", curl).CombinedOutput()
	require.NoError(t, err, "README's curl example:\n%s\n%s", curl, answer)
	require.Contains(t, string(answer), `"created":true`)

	// The lock exists when the answer comes (no waiting).
	locks := e.tp.Locks()
	require.Len(t, locks, 1)
	l := locks[0]
	require.Equal(t, "mallory", l.Spec.Target.User)
	require.Contains(t, l.Spec.Message, `in response to alert 7d1e of rule "Teleport login from a new country": login from a new country`)
	require.WithinDuration(t, time.Now().Add(time.Hour), *l.Spec.Expires, 5*time.Minute)

	// Teleport's lock.created, by teleportbeat's identity, is shipped.
	defer func() {
		if t.Failed() {
			for _, d := range es.Docs() {
				if ev, _ := d.Source["event"].(map[string]any); ev["action"] == "lock.created" {
					t.Logf("lock.created stored: %v", d.Source)
				}
			}
			t.Logf("stored %d, served %d, double holds %d", es.Count(), len(evs), e.tp.Store.Len())
		}
	}()
	waitFor(t, 2*time.Minute, "the served events and lock.created", func() bool {
		if es.Count() < len(evs)+1 {
			return false
		}
		for _, d := range es.Docs() {
			ev, _ := d.Source["event"].(map[string]any)
			user, _ := d.Source["user"].(map[string]any)
			target, _ := user["target"].(map[string]any)
			if ev["action"] == "lock.created" && user["name"] == "teleportbeat" && target["name"] == "mallory" {
				return true
			}
		}
		return false
	})

	// Refused: another CA's client (curl fails), a protected user.
	other, err := certs.NewCA("not the respond CA", certs.Options{Type: certs.ECDSA})
	require.NoError(t, err)
	stranger, err := other.Client("kibana")
	require.NoError(t, err)
	_, _, err = stranger.Write(e.dir, "stranger")
	require.NoError(t, err)
	strangerCurl := strings.ReplaceAll(strings.ReplaceAll(curl, "kibana.crt", "stranger.crt"), "kibana.key", "stranger.key")
	answer, err = exec.CommandContext(ctx, "bash", "-c", strangerCurl).CombinedOutput()
	require.Error(t, err, "%s", answer)
	client := kibanaClient(t, e.dir)
	for _, who := range []string{"breakglass", "teleportbeat"} {
		resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/v1/lock", port), "application/json", strings.NewReader(`{"user": "`+who+`", "ttl": "1h"}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, who)
	}
	require.Len(t, e.tp.Locks(), 1, "no other lock")

	s := stats(t, statsPort)
	require.Equal(t, 1.0, num(s, "teleportbeat", "audit", "response_locks_created"))
	require.Equal(t, 2.0, num(s, "teleportbeat", "audit", "response_requests_refused"), "the stranger's handshake failed before any request")
	p.stop()
}

// TestTestTeleportChecksTheLockPermissionForTheEndpoint: with the response
// endpoint on (and the failed-login lock off), `test teleport` checks that
// the role may create locks, and says what to add when it may not.
func TestTestTeleportChecksTheLockPermissionForTheEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	respondCerts(t, e.dir)
	extra := fmt.Sprintf("teleportbeat.respond:\n  enabled: true\n  listen: \"127.0.0.1:1\"\n  ssl.certificate: %s/respond.crt\n  ssl.key: %s/respond.key\n  ssl.certificate_authorities: [\"%s/respond-ca.crt\"]\n", e.dir, e.dir, e.dir)
	out, err := e.testTeleport(extra)
	require.NoError(t, err, out)
	require.Contains(t, out, "create locks...                OK")
	e.tp.DenyRead("lock", true)
	out, err = e.testTeleport(extra)
	require.Error(t, err, out)
	require.Contains(t, out, "create locks...                ERROR")
	require.Contains(t, out, "teleportbeat configure --lock adds them")
	require.Empty(t, e.tp.Locks(), "the check created no lock")
}

// TestTheEndpointNeverHoldsTheShipping: while Teleport's lock API keeps a
// lock request waiting (as long as the test holds it), events go on being
// shipped; released, the request gets its lock.
func TestTheEndpointNeverHoldsTheShipping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	respondCerts(t, e.dir)
	es, out := esSetup(t)
	port := freePort(t)
	// Teleport may take as long as the test holds it (no timeout races
	// the shipping below).
	cfg := e.config("teleportbeat.yml", out+fmt.Sprintf("teleportbeat.respond:\n  enabled: true\n  listen: \"127.0.0.1:%d\"\n  timeout: 1h\n  ssl.certificate: %s/respond.crt\n  ssl.key: %s/respond.key\n  ssl.certificate_authorities: [\"%s/respond-ca.crt\"]\n", port, e.dir, e.dir, e.dir))
	p := e.start(cfg)
	p.waitLog(time.Minute, "Response endpoint listening")

	gate := e.tp.Faults.GateLocks()
	client := kibanaClient(t, e.dir)
	answered := make(chan int, 1)
	go func() {
		resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/v1/lock", port), "application/json", strings.NewReader(`{"user": "mallory", "ttl": "1h"}`))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	waitFor(t, time.Minute, "the lock request held in Teleport", func() bool { return gate.Waiting() == 1 })

	evs := e.gen.Events(300, time.Now().Add(-time.Minute), 100*time.Millisecond)
	e.tp.Store.Add(evs...)
	waitFor(t, 2*time.Minute, "the events, while the lock request waits", func() bool { return es.Count() >= len(evs) })
	require.Equal(t, int64(1), gate.Waiting(), "the lock request is still held")
	require.Empty(t, e.tp.Locks())

	gate.Release(1)
	require.Equal(t, http.StatusCreated, <-answered)
	require.Len(t, e.tp.Locks(), 1)
	p.stop()
}

// TestAReadyActionLocksTheAlertsUser: README's configuration and setup
// command, run as written, make the Kibana connector and the rules' ready
// actions, snoozed; with the rule enabled and unsnoozed, its action,
// rendered as Kibana renders it for an alert made from an event the beat
// shipped, and posted with the connector's certificate, locks that
// event's user in Teleport by the time the endpoint answers.
func TestAReadyActionLocksTheAlertsUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	respondCerts(t, e.dir)
	e.addGenerated(100)
	es, out := esSetup(t)
	kb := estest.NewKibana()
	kbSrv := kb.Server()
	t.Cleanup(kbSrv.Close)
	port := freePort(t)
	respondCfg := strings.NewReplacer("/etc/teleportbeat/", e.dir+"/", "teleportbeat.example.com:8443", fmt.Sprintf("localhost:%d", port), "0.0.0.0:8443", fmt.Sprintf("127.0.0.1:%d", port)).
		Replace(readmeBlock(t, "<!-- respond: kibana_connector -->\n<!-- doctest: check-config -->\n```yaml\n"))
	cfg := e.config("teleportbeat.yml", out+respondCfg+fmt.Sprintf("setup.kibana.host: %q\n", kbSrv.URL))

	setup := strings.Fields(readmeBlock(t, "<!-- respond: setup -->\n```sh\n"))
	require.Equal(t, []string{"teleportbeat", "setup", "--detection-rules", "-c", "teleportbeat.yml"}, setup)
	cmd := exec.Command(beatBin, slices.Concat(setup[1:4], []string{cfg, "--path.home", repoRoot, "--path.data", filepath.Join(e.dir, "setup-data"), "--path.logs", filepath.Join(e.dir, "logs")})...)
	answer, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", answer)
	require.Contains(t, string(answer), `Kibana connector "teleportbeat: lock in Teleport" (teleportbeat-respond-lock) created`)
	require.Contains(t, string(answer), "Ready lock actions added, snoozed: 5")
	conn, ok := kb.Connector(rules.ConnectorID)
	require.True(t, ok)
	require.Equal(t, fmt.Sprintf("https://localhost:%d/v1/lock", port), conn["config"].(map[string]any)["url"])

	p := e.start(cfg)
	p.waitLog(time.Minute, "Response endpoint listening")
	// An alert of the rule, from a login the beat shipped: the event's
	// fields as Elasticsearch has them, kibana.alert.* as the alerts
	// index has them.
	var alert map[string]any
	waitFor(t, 2*time.Minute, "a shipped user.login with a user", func() bool {
		for _, d := range es.Docs() {
			ev, _ := d.Source["event"].(map[string]any)
			user, _ := d.Source["user"].(map[string]any)
			if name, _ := user["name"].(string); ev["action"] == "user.login" && name != "" && name != "teleportbeat" {
				alert = maps.Clone(d.Source)
				return true
			}
		}
		return false
	})
	all, err := rules.All()
	require.NoError(t, err)
	var rule rules.Rule
	for _, r := range all {
		if r.File == "login-from-new-country.yml" {
			rule = r
		}
	}
	alert["kibana.alert.uuid"] = "5b0e4f52c8d1"
	alert["kibana.alert.rule.name"] = rule.Name()
	alert["kibana.alert.rule.rule_id"] = rule.ID()
	user := alert["user"].(map[string]any)["name"].(string)

	require.NoError(t, kb.Analyst(rule.ID(), map[string]any{"enabled": true}))
	runs, err := kb.RunActions(rule.ID(), []map[string]any{alert})
	require.NoError(t, err)
	require.Empty(t, runs, "snoozed: enabling the rule locks no one")
	kb.Unmute(rule.ID())
	runs, err = kb.RunActions(rule.ID(), []map[string]any{alert})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, http.StatusCreated, runs[0].Status, "sent %s\nanswered %s", runs[0].Body, runs[0].Answer)
	locks := e.tp.Locks()
	require.Len(t, locks, 1, "locked when the endpoint answers")
	require.Equal(t, user, locks[0].Spec.Target.User)
	require.Contains(t, locks[0].Spec.Message, `in response to alert 5b0e4f52c8d1 of rule "`+rule.Name()+`": Kibana detection alert`)
	require.WithinDuration(t, time.Now().Add(time.Hour), *locks[0].Spec.Expires, 5*time.Minute)
}
