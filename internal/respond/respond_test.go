package respond

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/certs"
)

// fakeLocker records locks, or fails.
type fakeLocker struct {
	mu    sync.Mutex
	locks []types.Lock
	err   error
}

func (f *fakeLocker) UpsertLock(_ context.Context, l types.Lock) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.locks = append(f.locks, l)
	return nil
}

func (f *fakeLocker) all() []types.Lock {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]types.Lock(nil), f.locks...)
}

// endpoint is a Server behind real mutual TLS, and clients: one with a
// certificate of the endpoint's CA (Kibana's), one of another CA, one
// without a certificate.
type endpoint struct {
	srv                   *Server
	locker                *fakeLocker
	url                   string
	kibana, other, nocert *http.Client
}

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func newEndpoint(t *testing.T) *endpoint {
	t.Helper()
	ca, err := certs.NewCA("respond CA", certs.Options{Type: certs.ECDSA})
	require.NoError(t, err)
	serverPair, err := ca.Server("teleportbeat", "localhost", "127.0.0.1")
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(serverPair.CertPEM, serverPair.KeyPEM)
	require.NoError(t, err)
	tlsCfg, err := ServerTLS(cert, [][]byte{ca.CertPEM})
	require.NoError(t, err)
	locker := &fakeLocker{}
	srv := New(Config{
		TLS: tlsCfg, NeverLockUsers: []string{"teleportbeat", "breakglass"}, NeverLockRoles: []string{"editor"},
		TTLMin: time.Minute, TTLMax: 24 * time.Hour, MaxBodyBytes: 1024, Now: func() time.Time { return now },
	}, logptest.NewTestingLogger(t, ""), func(context.Context) (Locker, error) { return locker, nil })
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = tlsCfg
	ts.StartTLS()
	t.Cleanup(ts.Close)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	client := func(ca *certs.CA) *http.Client {
		c := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
		if ca != nil {
			p, err := ca.Client("kibana")
			require.NoError(t, err)
			kp, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
			require.NoError(t, err)
			c.Certificates = []tls.Certificate{kp}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: 10 * time.Second}
	}
	otherCA, err := certs.NewCA("someone else's CA", certs.Options{Type: certs.ECDSA})
	require.NoError(t, err)
	return &endpoint{srv: srv, locker: locker, url: ts.URL + Path, kibana: client(ca), other: client(otherCA), nocert: client(nil)}
}

func (e *endpoint) post(t *testing.T, c *http.Client, body string) (int, Response, error) {
	t.Helper()
	resp, err := c.Post(e.url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, Response{}, err
	}
	defer resp.Body.Close()
	var r Response
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return resp.StatusCode, r, nil
}

// TestAnAlertLocksItsUserOnce: a request as a Kibana rule action sends it
// creates a lock on the user for the TTL, its message naming the alert and
// the rule; the same request again is answered with that lock, and no
// second lock is made while it holds.
func TestAnAlertLocksItsUserOnce(t *testing.T) {
	e := newEndpoint(t)
	body := `{"user": "mallory", "ttl": "2h", "reason": "login from a new country", "alert_id": "a1b2", "rule_name": "Teleport login from a new country"}`
	status, r, err := e.post(t, e.kibana, body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, r.Error)
	require.True(t, r.Created)
	require.Equal(t, now.Add(2*time.Hour), *r.Expires)
	locks := e.locker.all()
	require.Len(t, locks, 1)
	l := locks[0]
	require.Equal(t, r.Lock, l.GetName())
	require.Equal(t, "mallory", l.Target().User)
	require.Equal(t, now.Add(2*time.Hour), *l.LockExpiry())
	require.Equal(t, `Locked by teleportbeat in response to alert a1b2 of rule "Teleport login from a new country": login from a new country`, l.Message())

	status, again, err := e.post(t, e.kibana, body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.False(t, again.Created)
	require.Equal(t, r.Lock, again.Lock)
	require.Len(t, e.locker.all(), 1, "no second lock while the first holds")
	require.EqualValues(t, 1, e.srv.Created.Load())

	// A role, and a login on one node, are targets too.
	status, r, err = e.post(t, e.kibana, `{"role": "contractor", "ttl": "30m"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, r.Error)
	status, r, err = e.post(t, e.kibana, `{"login": "root", "server_id": "5f8c0b4e", "ttl": "1h"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, r.Error)
	locks = e.locker.all()
	require.Equal(t, "contractor", locks[1].Target().Role)
	require.Equal(t, types.LockTarget{Login: "root", ServerID: "5f8c0b4e"}, locks[2].Target())
}

// TestEveryRefusalSaysWhy: no client certificate, one of another CA, a
// protected target, no TTL or one out of bounds, a malformed, unknown or
// oversized body, two targets: refused, nothing locked, counted.
func TestEveryRefusalSaysWhy(t *testing.T) {
	e := newEndpoint(t)
	_, _, err := e.post(t, e.nocert, `{"user": "mallory", "ttl": "1h"}`)
	require.Error(t, err, "no client certificate: the TLS handshake fails")
	_, _, err = e.post(t, e.other, `{"user": "mallory", "ttl": "1h"}`)
	require.Error(t, err, "a certificate of another CA: the TLS handshake fails")

	for body, want := range map[string]string{
		`{"user": "teleportbeat", "ttl": "1h"}`:                `user "teleportbeat" is never locked`,
		`{"user": "breakglass", "ttl": "1h"}`:                  `user "breakglass" is never locked`,
		`{"role": "editor", "ttl": "1h"}`:                      `role "editor" is never locked`,
		`{"user": "mallory"}`:                                  "a ttl is required",
		`{"user": "mallory", "ttl": "30s"}`:                    "ttl 30s is outside 1m0s to 24h0m0s",
		`{"user": "mallory", "ttl": "48h"}`:                    "ttl 48h0m0s is outside",
		`{"user": "mallory", "ttl": "soon"}`:                   `ttl "soon" is not a duration`,
		`{"user": "mallory", "role": "access", "ttl": "1h"}`:   "name exactly one target",
		`{"ttl": "1h"}`:                                        "name exactly one target",
		`{"server_id": "x", "user": "mallory", "ttl": "1h"}`:   "server_id goes with login",
		`{"user": "mallory", "ttl": "1h", "expires": "never"}`: `unknown field "expires"`,
		`{"user": "mallory", "ttl": "1h"} {"user": "x"}`:       "data after the JSON object",
		`user=mallory`: "the body is not a lock request",
		`{"user": "mallory", "ttl": "1h", "reason": "` + strings.Repeat("x", 2000) + `"}`: "the body is over 1024 bytes",
	} {
		status, r, err := e.post(t, e.kibana, body)
		require.NoError(t, err, body)
		require.GreaterOrEqual(t, status, 400, body)
		require.Contains(t, r.Error, want, body)
	}
	resp, err := e.kibana.Get(e.url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Empty(t, e.locker.all(), "nothing locked")
	require.EqualValues(t, 15, e.srv.Refused.Load())
}

// TestALockTeleportRefusesIsSaidAndNotRemembered: Teleport's error is the
// answer (502) and is counted; the next request tries again.
func TestALockTeleportRefusesIsSaidAndNotRemembered(t *testing.T) {
	e := newEndpoint(t)
	e.locker.err = errors.New("access denied to perform action \"create\" on \"lock\"")
	status, r, err := e.post(t, e.kibana, `{"user": "mallory", "ttl": "1h"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, status)
	require.Contains(t, r.Error, `Teleport did not create the lock: access denied to perform action "create" on "lock"`)
	require.Nil(t, r.Expires, "an error names no expiry")
	require.EqualValues(t, 1, e.srv.Errors.Load())
	e.locker.err = nil
	status, _, err = e.post(t, e.kibana, `{"user": "mallory", "ttl": "1h"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status)

	// In the alerts form, one failure makes the answer 502 (Kibana
	// retries the action); the target locked already is answered as held.
	e.locker.err = errors.New("connection refused")
	resp, err := e.kibana.Post(e.url, "application/json", strings.NewReader(`{"ttl": "1h", "alerts": [{"id": "a1", "user": "mallory"}, {"id": "a2", "user": "trudy"}, {}]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	var a Answers
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.False(t, a.Locks[0].Created, "mallory's lock holds")
	require.Empty(t, a.Locks[0].Error)
	require.Contains(t, a.Locks[1].Error, "Teleport did not create the lock: connection refused")
}

// TestARuleRunLocksEachAlertsUser: the alerts form (what the detection
// rules' ready action sends for one rule run) locks each alert's user
// once, passes over the closing {}, refuses a protected user or an alert
// without a user without stopping the others, and says which alert each
// answer is for.
func TestARuleRunLocksEachAlertsUser(t *testing.T) {
	e := newEndpoint(t)
	body := `{"ttl": "1h", "reason": "Kibana alert", "rule_name": "Teleport: Login from a country new for the user", "alerts": [` +
		`{"id": "a1", "user": "mallory"}, {"id": "a2", "user": "trudy"}, {"id": "a3", "user": "mallory"}, {"id": "a4", "user": "breakglass"}, {"id": "a5", "user": ""}, {}]}`
	resp, err := e.kibana.Post(e.url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var a Answers
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "one alert was refused: the answer says so")
	require.Len(t, a.Locks, 5, "the closing {} has no answer")
	for i, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		require.Equal(t, id, a.Locks[i].AlertID)
	}
	require.True(t, a.Locks[0].Created)
	require.True(t, a.Locks[1].Created)
	require.False(t, a.Locks[2].Created, "mallory is locked already: answered with her lock")
	require.Equal(t, a.Locks[0].Lock, a.Locks[2].Lock)
	require.Contains(t, a.Locks[3].Error, `alerts.3 (alert a4): user "breakglass" is never locked`)
	require.Contains(t, a.Locks[4].Error, "alerts.4 (alert a5): name exactly one target")
	locks := e.locker.all()
	require.Len(t, locks, 2)
	require.Equal(t, "mallory", locks[0].Target().User)
	require.Equal(t, `Locked by teleportbeat in response to alert a1 of rule "Teleport: Login from a country new for the user": Kibana alert`, locks[0].Message())
	require.Equal(t, "trudy", locks[1].Target().User)
	require.EqualValues(t, 2, e.srv.Refused.Load())

	// The form's own refusals.
	for body, want := range map[string]string{
		`{"ttl": "1h", "alerts": [{}]}`:                                "alerts has no alert naming a target",
		`{"ttl": "1h", "user": "x", "alerts": [{"user": "y"}]}`:        "leave user, role, login, server_id and alert_id out",
		`{"ttl": "1h", "alerts": [{"user": "y", "expires": "never"}]}`: `unknown field "expires"`,
		`{"alerts": [{"user": "y"}]}`:                                  "a ttl is required",
	} {
		status, r, err := e.post(t, e.kibana, body)
		require.NoError(t, err, body)
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, r.Error, want, body)
	}
	require.Len(t, e.locker.all(), 2)
}
