// Package respond is teleportbeat's response endpoint: an HTTPS listener,
// mutual TLS only, where a Kibana rule action (the Webhook connector with
// client-certificate authentication) asks for a Teleport lock on the user,
// role or login an alert is about. It is off unless configured
// (teleportbeat.respond), has no default address, and refuses, with the
// reason, a request from a certificate its CA did not sign, for a target
// it must never lock (teleportbeat's own user, the break-glass users and
// roles of never_lock), without a TTL or with one outside its bounds, or a
// body it cannot read. A target locked already is answered with its lock
// until that lock expires.
//
// A request names one target, or carries the alerts of one rule run
// (alerts), each naming its target: what the detection rules' ready
// action sends (internal/rules, LockBody).
package respond

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/gravitational/teleport/api/types"
)

// Locker creates locks: teleport/api's client.
type Locker interface {
	UpsertLock(ctx context.Context, lock types.Lock) error
}

// LockerFunc is a function as a Locker.
type LockerFunc func(ctx context.Context, lock types.Lock) error

// UpsertLock calls f.
func (f LockerFunc) UpsertLock(ctx context.Context, lock types.Lock) error { return f(ctx, lock) }

// Config configures the endpoint.
type Config struct {
	// TLS is the server's certificate and the CA pool its clients'
	// certificates must chain to (ClientAuth RequireAndVerifyClientCert).
	TLS *tls.Config
	// NeverLockUsers and NeverLockRoles are never locked (break-glass
	// accounts, teleportbeat's own user).
	NeverLockUsers, NeverLockRoles []string
	// TTLMin and TTLMax bound a lock's duration; a request must give one.
	TTLMin, TTLMax time.Duration
	// MaxBodyBytes bounds a request's body.
	MaxBodyBytes int64
	// Timeout bounds the creation of one lock in Teleport.
	Timeout time.Duration
	Now     func() time.Time
}

// Request asks for a lock: one target (user, role, or login with an
// optional server_id), its TTL, and why (the alert and its rule). Or,
// instead of the target and alert_id, Alerts: a lock for each alert's
// target, with the same TTL, reason and rule.
type Request struct {
	Target
	TTL      string  `json:"ttl"`
	Reason   string  `json:"reason"`
	AlertID  string  `json:"alert_id"`
	RuleName string  `json:"rule_name"`
	Alerts   []Alert `json:"alerts"`
}

// Target is what a lock is on.
type Target struct {
	User     string `json:"user"`
	Role     string `json:"role"`
	Login    string `json:"login"`
	ServerID string `json:"server_id"`
}

// Alert is one alert of a rule run and its target. An empty one ({}) is
// passed over: a Mustache section, which renders the list, cannot leave
// out the comma after the last alert, so the list ends with {}.
type Alert struct {
	ID string `json:"id"`
	Target
}

// Response is the endpoint's answer to one target.
type Response struct {
	AlertID string     `json:"alert_id,omitempty"` // in the alerts form
	Lock    string     `json:"lock,omitempty"`
	Expires *time.Time `json:"expires,omitempty"` // nil in an error
	// Created is false when the target was locked already.
	Created bool   `json:"created"`
	Error   string `json:"error,omitempty"`
}

// Answers is the answer to the alerts form: one Response per alert, in
// order. Its status is the worst of theirs: 502 when Teleport failed one
// (Kibana retries; the locks made are answered as held), else 400 when
// one was refused (the others were still locked), else 201 when one was
// created, else 200.
type Answers struct {
	Locks []Response `json:"locks"`
}

// Server answers lock requests.
type Server struct {
	cfg    Config
	log    *logp.Logger
	locker func(context.Context) (Locker, error)

	mu     sync.Mutex
	locked map[string]Response // lock name -> the lock, until it expires

	Created atomic.Int64 // locks created
	Refused atomic.Int64 // requests refused (client, target, TTL, body)
	Errors  atomic.Int64 // locks Teleport did not create
}

// New returns the endpoint's handler; locker gives Teleport's client.
func New(cfg Config, log *logp.Logger, locker func(context.Context) (Locker, error)) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Server{cfg: cfg, log: log, locker: locker, locked: map[string]Response{}}
}

// Serve answers on l, over TLS with client certificates, until ctx is
// done. It runs beside the shipping: nothing it does waits on it.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         s.cfg.TLS,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// An answer waits for Teleport for up to Timeout.
		WriteTimeout: s.cfg.Timeout + 30*time.Second,
	}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	err := srv.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Path is where lock requests are posted.
const Path = "/v1/lock"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer := "unknown"
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		// The listener requires a verified client certificate; a handler
		// reached otherwise (a test, a misconfigured listener) refuses.
		s.refuse(w, http.StatusUnauthorized, peer, "a client certificate signed by teleportbeat.respond.ssl.certificate_authorities is required")
		return
	}
	peer = r.TLS.VerifiedChains[0][0].Subject.CommonName
	if r.URL.Path != Path {
		s.refuse(w, http.StatusNotFound, peer, "the lock endpoint is POST "+Path)
		return
	}
	if r.Method != http.MethodPost {
		s.refuse(w, http.StatusMethodNotAllowed, peer, "the lock endpoint is POST "+Path)
		return
	}
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.refuse(w, http.StatusRequestEntityTooLarge, peer, fmt.Sprintf("the body is over %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		s.refuse(w, http.StatusBadRequest, peer, "the body is not a lock request: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		s.refuse(w, http.StatusBadRequest, peer, "the body is not a lock request: data after the JSON object")
		return
	}
	ttl, err := s.checkTTL(req.TTL)
	if err != nil {
		s.refuse(w, http.StatusBadRequest, peer, err.Error())
		return
	}
	if req.Alerts != nil {
		s.serveAlerts(r.Context(), w, peer, req, ttl)
		return
	}
	target, err := s.check(req.Target)
	if err != nil {
		s.refuse(w, http.StatusBadRequest, peer, err.Error())
		return
	}
	resp, status := s.lock(r.Context(), peer, req, target, ttl)
	writeJSON(w, status, resp)
}

// serveAlerts locks each alert's target: a refused alert does not stop
// the others.
func (s *Server) serveAlerts(ctx context.Context, w http.ResponseWriter, peer string, req Request, ttl time.Duration) {
	if req.Target != (Target{}) || req.AlertID != "" {
		s.refuse(w, http.StatusBadRequest, peer, "alerts names each alert's target and id: leave user, role, login, server_id and alert_id out")
		return
	}
	out := Answers{Locks: []Response{}}
	status := http.StatusOK
	for i, a := range req.Alerts {
		if a == (Alert{}) {
			continue
		}
		one := req
		one.AlertID = a.ID
		target, err := s.check(a.Target)
		if err != nil {
			reason := fmt.Sprintf("alerts.%d (alert %s): %v", i, orUnknown(a.ID), err)
			s.refused(http.StatusBadRequest, peer, reason)
			out.Locks = append(out.Locks, Response{AlertID: a.ID, Error: reason})
			status = worse(status, http.StatusBadRequest)
			continue
		}
		resp, st := s.lock(ctx, peer, one, target, ttl)
		resp.AlertID = a.ID
		out.Locks = append(out.Locks, resp)
		status = worse(status, st)
	}
	if len(out.Locks) == 0 {
		s.refuse(w, http.StatusBadRequest, peer, "alerts has no alert naming a target")
		return
	}
	writeJSON(w, status, out)
}

// worse orders the statuses of one answer: 502 over 400 over 201 over
// 200, which is also their numeric order.
func worse(a, b int) int { return max(a, b) }

// checkTTL reads a request's TTL: required, within bounds.
func (s *Server) checkTTL(v string) (time.Duration, error) {
	if v == "" {
		return 0, fmt.Errorf("a ttl is required (between %s and %s): teleportbeat makes no lock that lasts until removed", s.cfg.TTLMin, s.cfg.TTLMax)
	}
	ttl, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("ttl %q is not a duration (30m, 4h)", v)
	}
	if ttl < s.cfg.TTLMin || ttl > s.cfg.TTLMax {
		return 0, fmt.Errorf("ttl %s is outside %s to %s (teleportbeat.respond.ttl)", ttl, s.cfg.TTLMin, s.cfg.TTLMax)
	}
	return ttl, nil
}

// check validates a target: exactly one, not protected.
func (s *Server) check(req Target) (types.LockTarget, error) {
	var t types.LockTarget
	n := 0
	for _, v := range []string{req.User, req.Role, req.Login} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return t, errors.New("name exactly one target: user, role, or login (with an optional server_id)")
	case req.ServerID != "" && req.Login == "":
		return t, errors.New("server_id goes with login (a login on a node)")
	case req.User != "" && slices.Contains(s.cfg.NeverLockUsers, req.User):
		return t, fmt.Errorf("user %q is never locked by teleportbeat (teleportbeat.respond.never_lock.users, or teleportbeat's own user)", req.User)
	case req.Role != "" && slices.Contains(s.cfg.NeverLockRoles, req.Role):
		return t, fmt.Errorf("role %q is never locked by teleportbeat (teleportbeat.respond.never_lock.roles)", req.Role)
	}
	return types.LockTarget{User: req.User, Role: req.Role, Login: req.Login, ServerID: req.ServerID}, nil
}

// lockName is the lock's name for a target: one lock per target, so that
// a repeated request finds it.
func lockName(req types.LockTarget) string {
	kind, value := "user", req.User
	switch {
	case req.Role != "":
		kind, value = "role", req.Role
	case req.Login != "":
		kind, value = "login", req.Login+"@"+req.ServerID
	}
	sum := sha256.Sum256([]byte(value))
	return "teleportbeat-response-" + kind + "-" + hex.EncodeToString(sum[:8])
}

// lock creates the target's lock, or answers with the one that holds.
func (s *Server) lock(ctx context.Context, peer string, req Request, target types.LockTarget, ttl time.Duration) (Response, int) {
	name := lockName(target)
	now := s.cfg.Now()
	s.mu.Lock()
	if held, ok := s.locked[name]; ok && now.Before(*held.Expires) {
		s.mu.Unlock()
		held.Created = false
		s.log.Infow("Lock requested for a target locked already: answered with its lock", "lock", name, "target", target.String(), "expires", *held.Expires, "alert_id", req.AlertID, "rule", req.RuleName, "client", peer)
		return held, http.StatusOK
	}
	s.mu.Unlock()

	expires := now.Add(ttl).UTC()
	msg := "Locked by teleportbeat"
	if req.RuleName != "" || req.AlertID != "" {
		msg += fmt.Sprintf(" in response to alert %s of rule %q", orUnknown(req.AlertID), req.RuleName)
	}
	if req.Reason != "" {
		msg += ": " + req.Reason
	}
	lock, err := types.NewLock(name, types.LockSpecV2{Target: target, Message: msg, Expires: &expires})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		var l Locker
		if l, err = s.locker(ctx); err == nil {
			err = l.UpsertLock(ctx, lock)
		}
	}
	if err != nil {
		s.Errors.Add(1)
		s.log.Errorw("Teleport did not create the lock", "lock", name, "target", target.String(), "alert_id", req.AlertID, "rule", req.RuleName, "client", peer, "error", err)
		return Response{Error: "Teleport did not create the lock: " + err.Error()}, http.StatusBadGateway
	}
	resp := Response{Lock: name, Expires: &expires, Created: true}
	s.mu.Lock()
	s.locked[name] = resp
	for n, r := range s.locked { // forget expired ones
		if !now.Before(*r.Expires) {
			delete(s.locked, n)
		}
	}
	s.mu.Unlock()
	s.Created.Add(1)
	s.log.Warnw("Created a Teleport lock in response to an alert", "lock", name, "target", target.String(), "expires", expires, "alert_id", req.AlertID, "rule", req.RuleName, "reason", req.Reason, "client", peer)
	return resp, http.StatusCreated
}

func orUnknown(s string) string {
	if s == "" {
		return "(no id)"
	}
	return s
}

// refuse answers a refused request with its reason, and says it.
func (s *Server) refuse(w http.ResponseWriter, status int, peer, reason string) {
	s.refused(status, peer, reason)
	writeJSON(w, status, Response{Error: reason})
}

// refused counts and says a refusal.
func (s *Server) refused(status int, peer, reason string) {
	s.Refused.Add(1)
	s.log.Warnw("Lock request refused", "reason", reason, "status", status, "client", peer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	_, _ = w.Write(append(b, '\n'))
}

// Listen opens the endpoint's address; TLS is done by Serve.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("teleportbeat.respond.listen %s: %w", addr, err)
	}
	return l, nil
}

// ServerTLS is the endpoint's TLS: its certificate, and client
// certificates required and verified against cas.
func ServerTLS(cert tls.Certificate, cas [][]byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	for _, pem := range cas {
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("teleportbeat.respond.ssl.certificate_authorities: no PEM certificate")
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
