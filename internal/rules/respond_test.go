package rules

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/certs"
	"github.com/teleportbeat/teleportbeat/internal/respond"
)

// locks are the locks the endpoint made.
type locks struct {
	mu  sync.Mutex
	all []types.Lock
}

// endpoint runs teleportbeat's response endpoint behind mutual TLS and
// returns the connector that reaches it.
func endpoint(t *testing.T) (Connector, *locks) {
	t.Helper()
	ca, err := certs.NewCA("respond CA", certs.Options{Type: certs.ECDSA})
	require.NoError(t, err)
	server, err := ca.Server("teleportbeat", "localhost", "127.0.0.1")
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	require.NoError(t, err)
	tlsCfg, err := respond.ServerTLS(cert, [][]byte{ca.CertPEM})
	require.NoError(t, err)
	l := &locks{}
	srv := respond.New(respond.Config{TLS: tlsCfg, NeverLockUsers: []string{"teleportbeat"}, TTLMin: time.Minute, TTLMax: 24 * time.Hour, MaxBodyBytes: 64 << 10},
		logptest.NewTestingLogger(t, ""), func(context.Context) (respond.Locker, error) {
			return respond.LockerFunc(func(_ context.Context, lock types.Lock) error {
				l.mu.Lock()
				defer l.mu.Unlock()
				l.all = append(l.all, lock)
				return nil
			}), nil
		})
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = tlsCfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	kibana, err := ca.Client("kibana")
	require.NoError(t, err)
	return Connector{URL: ts.URL + respond.Path, ClientCert: kibana.CertPEM, Key: kibana.KeyPEM, CA: ca.CertPEM}, l
}

// alert is a detection alert as Kibana's alerts index holds it: the
// source event's fields, and kibana.alert.* flattened.
func alert(uuid, user string) map[string]any {
	return map[string]any{
		"@timestamp": "2026-12-03T12:00:00Z", "event": map[string]any{"action": "user.login", "outcome": "success"},
		"user": map[string]any{"name": user}, "source": map[string]any{"ip": "203.0.113.40"},
		"kibana.alert.uuid": uuid, "kibana.alert.rule.name": "Teleport: Login from a country new for the user", "kibana.alert.status": "active",
	}
}

// TestTheReadyLockActionLocksEachAlertsUser: setup's connector (the
// Webhook connector's schema) and ready actions (snoozed) on the rules
// that have one; once an analyst enables the rule and unsnoozes it, a run
// with alerts, its action rendered and sent as Kibana does, locks each
// alert's user through the endpoint, a hostile name included.
func TestTheReadyLockActionLocksEachAlertsUser(t *testing.T) {
	all, kb, c := withKibana(t)
	conn, l := endpoint(t)
	out, err := install(t, c, all, false)
	require.NoError(t, err)
	created, err := EnsureConnector(&c.Connection, conn)
	require.NoError(t, err)
	require.True(t, created)
	armed, err := Arm(&c.Connection, all, out.Installed, created)
	require.NoError(t, err)
	var ready []Rule
	for _, r := range all {
		if r.Respond != nil {
			ready = append(ready, r)
		}
	}
	require.Len(t, ready, 5)
	require.Len(t, armed.Armed, len(ready))
	for _, r := range all {
		actions := kb.Rules()[r.ID()]["actions"].([]any)
		if r.Respond == nil {
			require.Empty(t, actions, r.Name())
			continue
		}
		require.Len(t, actions, 1, r.Name())
		require.True(t, kb.Muted(r.ID()), "%s: snoozed until an analyst turns it on", r.Name())
	}

	rule := byFile(t, all, "login-from-new-country.yml")
	alerts := []map[string]any{alert("a1", "alice"), alert("a2", "bob"), alert("a3", `mal"lory\`)}
	require.NoError(t, kb.Analyst(rule.ID(), map[string]any{"enabled": true}))
	runs, err := kb.RunActions(rule.ID(), alerts)
	require.NoError(t, err)
	require.Empty(t, runs, "snoozed: enabling the rule locks no one")
	require.Empty(t, l.all)

	kb.Unmute(rule.ID())
	runs, err = kb.RunActions(rule.ID(), alerts)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, http.StatusCreated, runs[0].Status, "body %s\nanswer %s", runs[0].Body, runs[0].Answer)
	var a respond.Answers
	require.NoError(t, json.Unmarshal([]byte(runs[0].Answer), &a))
	require.Len(t, a.Locks, 3)
	require.Len(t, l.all, 3)
	for i, want := range []string{"alice", "bob", `mal"lory\`} {
		require.Equal(t, want, l.all[i].Target().User)
		require.Equal(t, alerts[i]["kibana.alert.uuid"], a.Locks[i].AlertID)
		require.Contains(t, l.all[i].Message(), `of rule "`+rule.Name()+`": Kibana detection alert`)
		require.WithinDuration(t, time.Now().Add(time.Hour), *l.all[i].LockExpiry(), time.Minute)
	}

	// Setup again: the connector is brought up to date, nothing added
	// twice; a rule whose action an analyst removed is not given it back.
	created, err = EnsureConnector(&c.Connection, conn)
	require.NoError(t, err)
	require.False(t, created)
	require.NoError(t, kb.Analyst(rule.ID(), map[string]any{"actions": []any{}}))
	armed, err = Arm(&c.Connection, all, nil, created)
	require.NoError(t, err)
	require.Empty(t, armed.Armed)
	require.Len(t, armed.Had, len(ready)-1)
	require.Equal(t, []string{rule.Name()}, armed.LeftOut)
}

// TestTheConnectorIsTheWebhookConnectorsSchema: the stand-in refuses what
// Kibana's Webhook connector refuses, and EnsureConnector says Kibana's
// reason.
func TestTheConnectorIsTheWebhookConnectorsSchema(t *testing.T) {
	_, kb, c := withKibana(t)
	conn, _ := endpoint(t)
	conn.URL = "not a url"
	_, err := EnsureConnector(&c.Connection, conn)
	require.ErrorContains(t, err, "unable to parse url")
	conn.URL = "https://teleportbeat.example.com:8443/v1/lock"
	conn.Key = nil
	_, err = EnsureConnector(&c.Connection, conn)
	require.ErrorContains(t, err, "must specify one of the following schemas")

	// Kibana refuses a write without kbn-xsrf (libbeat's client sends it).
	good, _ := endpoint(t)
	config, secrets := good.fields()
	body, err := json.Marshal(map[string]any{"name": ConnectorName, "connector_type_id": ".webhook", "config": config, "secrets": secrets})
	require.NoError(t, err)
	resp, err := http.Post(c.Connection.URL+ConnectorPath+ConnectorID, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	_, found := kb.Connector(ConnectorID)
	require.False(t, found)
}

// TestReadyActionsAreWellFormed: every ready action names its TTL, and a
// respond key the rules do not know is refused with the file.
func TestReadyActionsAreWellFormed(t *testing.T) {
	_, err := Parse("x.yml", []byte("rule_id: x\nname: x\nversion: 1\ntype: query\nrespond: {lock: role, ttl: 1h}\n"))
	require.ErrorContains(t, err, `rule x.yml: respond.lock: "role"`)
	_, err = Parse("x.yml", []byte("rule_id: x\nname: x\nversion: 1\ntype: query\nrespond: {lock: user, ttl: 10s}\n"))
	require.ErrorContains(t, err, "respond.ttl: 10s: at least 1m")
	r, err := Parse("x.yml", []byte("rule_id: x\nname: x\nversion: 1\ntype: query\nrespond: {lock: user, ttl: 2h}\n"))
	require.NoError(t, err)
	require.Contains(t, LockBody(*r.Respond), `"ttl": "2h"`)
	require.NotContains(t, r.Object, "respond", "not part of the rule object")
}
