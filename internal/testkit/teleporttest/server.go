package teleporttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gravitational/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/gravitational/teleport/api"
	"github.com/gravitational/teleport/api/client/proto"
	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
	"github.com/gravitational/teleport/api/types"
	apievents "github.com/gravitational/teleport/api/types/events"
	"github.com/gravitational/teleport/api/utils/grpc/interceptors"
)

// Config configures a Server.
type Config struct {
	// ClusterName is the Teleport cluster's name (default "teleport.example.com").
	ClusterName string
	// Addr is where to listen (default 127.0.0.1:0, a free port).
	Addr string
	// PKI is the cluster CA; a new one is made when nil.
	PKI *PKI
	// Store holds the audit log; a new, empty one is made when nil.
	Store *Store
	// RandomIDs makes the API id of events without a uid a fresh random
	// UUID on every read, as newer Auth Services do.
	RandomIDs bool
	// NoExport answers the export API with NotImplemented, as Teleport's
	// file backend does.
	NoExport bool
	// ClockOffset is how far the cluster's clock is from this host's
	// (negative: behind): the events Live emits are timed by it.
	ClockOffset time.Duration
	// Version is the Teleport version the double is (default: the pinned
	// API's): Ping reports it, and the methods and role versions it
	// lacks are refused as that version's Auth Service refuses them
	// (versions.go).
	Version string
	// Typed converts a stored event into Teleport's typed form, for the
	// older typed methods (SearchEvents, StreamSessionEvents); without it
	// they answer Internal. teleporttest/typed provides it.
	Typed func(*Event) (*apievents.OneOf, error)
}

// Server is a running Teleport test double.
type Server struct {
	PKI    *PKI
	Store  *Store
	Faults *Faults

	clusterName string
	serverCert  tls.Certificate

	mu       sync.Mutex
	addr     string
	grpcSrv  *grpc.Server
	lis      *trackingListener
	revoked  map[string]bool // certificate serials the cluster rejects
	denied   map[string]bool // resource kinds ("event", "session", "lock") reads are refused for
	sessions map[string][]*Event
	locks    []*types.LockV2
	// revokeBefore rejects every certificate with a serial up to it
	// (but revokeKeep).
	revokeBefore int64
	revokeKeep   string

	calls       atomic.Int64 // audit search calls served
	inFlight    atomic.Int64 // audit searches being served
	maxInFlight atomic.Int64
	randomIDs   bool
	noExport    bool
	clockOffset time.Duration
	version     version
	typed       func(*Event) (*apievents.OneOf, error)

	exportCalls atomic.Int64 // export chunk streams served
	chunkCalls  atomic.Int64 // chunk listings served
}

// New starts a Teleport test double.
func New(cfg Config) (*Server, error) {
	if cfg.ClusterName == "" {
		cfg.ClusterName = "teleport.example.com"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.PKI == nil {
		p, err := NewPKI(cfg.ClusterName)
		if err != nil {
			return nil, err
		}
		cfg.PKI = p
	}
	if cfg.Store == nil {
		cfg.Store = &Store{}
	}
	if cfg.Version == "" {
		cfg.Version = api.Version
	}
	v, err := parseVersion(cfg.Version)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if host != "" {
		hosts = append(hosts, host)
	}
	cert, err := cfg.PKI.ServerCertificate(hosts...)
	if err != nil {
		return nil, err
	}
	s := &Server{
		PKI:         cfg.PKI,
		Store:       cfg.Store,
		Faults:      &Faults{},
		clusterName: cfg.ClusterName,
		serverCert:  cert,
		revoked:     map[string]bool{},
		denied:      map[string]bool{},
		randomIDs:   cfg.RandomIDs,
		noExport:    cfg.NoExport,
		clockOffset: cfg.ClockOffset,
		typed:       cfg.Typed,
		sessions:    map[string][]*Event{},
		version:     v,
	}
	if err := s.listen(cfg.Addr); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the host:port clients dial.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ClusterName is the name Ping reports.
func (s *Server) ClusterName() string { return s.clusterName }

// MaxConcurrentSearches returns the most audit searches served at once.
func (s *Server) MaxConcurrentSearches() int64 { return s.maxInFlight.Load() }

// ExportCalls returns how many export chunk streams the server answered.
func (s *Server) ExportCalls() int64 { return s.exportCalls.Load() }

// ChunkListCalls returns how many chunk listings the server answered.
func (s *Server) ChunkListCalls() int64 { return s.chunkCalls.Load() }

// SearchCalls returns how many audit searches the server answered.
func (s *Server) SearchCalls() int64 { return s.calls.Load() }

func (s *Server) listen(addr string) error {
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{s.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.PKI.CAPool(),
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2"},
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	lis := &trackingListener{Listener: raw, conns: map[net.Conn]struct{}{}}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.ChainUnaryInterceptor(interceptors.GRPCServerUnaryErrorInterceptor, s.unaryAuth),
		grpc.ChainStreamInterceptor(interceptors.GRPCServerStreamErrorInterceptor, s.streamAuth),
		grpc.MaxSendMsgSize(64<<20),
		grpc.ForceServerCodecV2(preEncodedCodec{store: s.Store}),
	)
	proto.RegisterAuthServiceServer(srv, &authService{s: s})
	auditlogpb.RegisterAuditLogServiceServer(srv, &auditLogService{s: s})
	s.mu.Lock()
	s.addr = raw.Addr().String()
	s.grpcSrv = srv
	s.lis = lis
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// Stop shuts the server down hard: open connections are cut, as when the
// Auth Service goes away.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, lis := s.grpcSrv, s.lis
	s.grpcSrv, s.lis = nil, nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	if lis != nil {
		lis.closeAll()
	}
}

// Restart brings a stopped server back on the same address.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.grpcSrv != nil
	addr := s.addr
	s.mu.Unlock()
	if running {
		return nil
	}
	var err error
	// The port may linger briefly after the stop.
	for i := 0; i < 50; i++ {
		if err = s.listen(addr); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// CutConnections closes every open client connection without stopping the
// server; clients reconnect.
func (s *Server) CutConnections() {
	s.mu.Lock()
	lis := s.lis
	s.mu.Unlock()
	if lis != nil {
		lis.closeAll()
	}
}

// Revoke makes the cluster reject the identity from now on, as Teleport
// does for an expired or locked-out certificate.
func (s *Server) Revoke(id *Identity) error {
	cert, err := parseCertPEM(id.CertPEM)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[cert.SerialNumber.String()] = true
	return nil
}

// RevokeAllBut makes the cluster reject every identity issued so far
// except keep (nil: reject them all), as when certificates expire or the
// CA rotates.
func (s *Server) RevokeAllBut(keep *Identity) error {
	var keepSerial string
	if keep != nil {
		cert, err := parseCertPEM(keep.CertPEM)
		if err != nil {
			return err
		}
		keepSerial = cert.SerialNumber.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeBefore = s.PKI.lastSerial()
	s.revokeKeep = keepSerial
	return nil
}

// DenyRead makes reads of a resource kind ("event", "session") fail with
// access denied, as a role without that permission would.
func (s *Server) DenyRead(kind string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[kind] = deny
}

func (s *Server) isDenied(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied[kind]
}

// NewIdentity issues a client identity valid for ttl with the roles of
// the role file `teleportbeat configure` writes.
func (s *Server) NewIdentity(ttl time.Duration) (*Identity, error) {
	return s.PKI.IssueIdentity("teleportbeat", []string{"teleportbeat"}, ttl)
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no certificate in PEM data")
	}
	return x509.ParseCertificate(block.Bytes)
}

// authenticate checks the caller's certificate as Teleport's auth
// middleware does on every request: signed by the cluster (checked by
// TLS), not expired, not revoked.
func (s *Server) authenticate(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, trace.AccessDenied("missing peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, trace.AccessDenied("missing client certificate")
	}
	cert := ti.State.PeerCertificates[0]
	if time.Now().After(cert.NotAfter) {
		return nil, trace.AccessDenied("client certificate expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	revoked := s.revoked[cert.SerialNumber.String()]
	s.mu.Unlock()
	s.mu.Lock()
	if before := s.revokeBefore; before > 0 && cert.SerialNumber.Int64() <= before && cert.SerialNumber.String() != s.revokeKeep {
		revoked = true
	}
	s.mu.Unlock()
	if revoked {
		return nil, trace.AccessDenied("client certificate has been revoked")
	}
	return cert, nil
}

type identityKey struct{}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	cert, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return handler(context.WithValue(ctx, identityKey{}, cert), req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if _, err := s.authenticate(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}

// authService implements the parts of Teleport's AuthService that
// teleportbeat calls.
type authService struct {
	proto.UnimplementedAuthServiceServer
	s *Server
}

func (a *authService) Ping(ctx context.Context, _ *proto.PingRequest) (*proto.PingResponse, error) {
	remote := ""
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	return &proto.PingResponse{
		ClusterName:   a.s.clusterName,
		ServerVersion: a.s.version.String(),
		ServerFeatures: &proto.Features{
			AdvancedAccessWorkflows: true,
		},
		RemoteAddr: remote,
	}, nil
}

// trackingListener remembers accepted connections so that the server can
// cut them (outages, a connection lost in the middle of a page).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// StartWithIdentity starts a double for a test (configured by cfg, if
// given) and writes an identity file for it (valid for an hour) in dir;
// the double stops with the test. Every test package starts its double
// this way.
func StartWithIdentity(tb testing.TB, dir string, cfg ...Config) (*Server, string) {
	tb.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	tp, err := New(c)
	if err != nil {
		tb.Fatalf("start the Teleport double: %v", err)
	}
	tb.Cleanup(tp.Stop)
	ident, err := tp.NewIdentity(time.Hour)
	if err != nil {
		tb.Fatalf("issue an identity: %v", err)
	}
	path := filepath.Join(dir, "identity")
	if err := ident.WriteIdentityFile(path); err != nil {
		tb.Fatalf("write the identity file: %v", err)
	}
	return tp, path
}
