package teleport

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/gravitational/teleport/api/breaker"
	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/client/proto"

	"github.com/teleportbeat/teleportbeat/config"
)

// maxMessageSize bounds one gRPC response; Teleport pages are cut at about
// 1 MiB of events, but single events can be larger.
const maxMessageSize = 128 << 20

// Conn is a lazily established, shared connection to the cluster. The
// gRPC connection reconnects by itself after network failures; Conn only
// makes the first connection (retried by the callers' backoff) and
// replaces the client when asked to (new credentials).
type Conn struct {
	cfg   config.Teleport
	creds Credentials
	log   *logp.Logger

	mu   sync.Mutex
	clt  *client.Client
	caps *capabilities // of clt
}

// NewConn returns a connection that dials on first use.
func NewConn(cfg config.Teleport, creds Credentials, log *logp.Logger) *Conn {
	return &Conn{cfg: cfg, creds: creds, log: log}
}

// Client returns the connected client, dialing if needed. teleport/api
// dials every address (as Auth Service, and through a Proxy) in parallel
// and keeps the first that works.
func (c *Conn) Client(ctx context.Context) (*client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clt != nil {
		return c.clt, nil
	}
	if exp, ok := c.creds.Expiry(); ok && time.Now().After(exp) {
		c.log.Errorw("Teleport credentials have expired; renew them (tctl auth sign or Machine ID)", "expired_at", exp.UTC().Format(time.RFC3339), "files", c.creds.Files())
	}
	dialCtx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+time.Second)
	defer cancel()
	// A port that refuses, or a name that does not resolve, is said at
	// once (teleport/api would retry until the dial timeout).
	if err := probeTCP(dialCtx, c.cfg.Addr, c.cfg.DialTimeout); err != nil {
		return nil, err
	}
	clt, err := client.New(dialCtx, client.Config{
		Addrs:       c.cfg.Addr,
		Credentials: []client.Credentials{c.creds},
		DialTimeout: c.cfg.DialTimeout,
		// teleport/api's circuit breaker trips after ten calls failing in a
		// minute and then refuses every call for a minute more, again and
		// again while the cluster is down: a recovered cluster would be
		// noticed up to a minute late. teleportbeat retries on its own
		// capped backoff (teleportbeat.teleport.backoff), which is what
		// decides how soon it notices.
		CircuitBreakerConfig: breaker.NoopBreakerConfig(),
		DialOpts: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize)),
			// Reconnect on the beat's own schedule rather than gRPC's
			// default of up to two minutes between attempts.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           grpcbackoff.Config{BaseDelay: c.cfg.Backoff.Init, Multiplier: 1.6, Jitter: 0.2, MaxDelay: c.cfg.Backoff.Max},
				MinConnectTimeout: c.cfg.DialTimeout,
			}),
		},
	})
	if err != nil {
		return nil, ExplainConnect(err, c.cfg.Addr)
	}
	c.clt = clt
	c.caps = newCapabilities(c.log)
	return clt, nil
}

// AuditLog is Client's audit log service, decoding events with package
// event.
func (c *Conn) AuditLog(ctx context.Context) (*AuditLog, error) {
	clt, err := c.Client(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	caps := c.caps
	c.mu.Unlock()
	return &AuditLog{conn: clt.GetConnection(), clt: clt, caps: caps, addrs: c.cfg.Addr}, nil
}

// Reset drops the client; the next call dials again.
func (c *Conn) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clt != nil {
		_ = c.clt.Close()
		c.clt = nil
	}
}

// Close closes the connection.
func (c *Conn) Close() { c.Reset() }

// Ping returns the cluster's name and version.
func (c *Conn) Ping(ctx context.Context) (proto.PingResponse, error) {
	clt, err := c.Client(ctx)
	if err != nil {
		return proto.PingResponse{}, err
	}
	pong, err := clt.Ping(ctx)
	return pong, Explain(err, c.cfg.Addr)
}

// Identity describes the certificate the beat presents.
type Identity struct {
	User     string
	Roles    []string
	NotAfter time.Time
}

// CurrentIdentity reads the user, roles and expiry from the client
// certificate (Teleport encodes the user as the subject's common name and
// the roles as its organizations).
func (c *Conn) CurrentIdentity() (Identity, error) {
	tc, err := c.creds.TLSConfig()
	if err != nil {
		return Identity{}, err
	}
	var der []byte
	switch {
	case tc.GetClientCertificate != nil:
		cert, err := tc.GetClientCertificate(nil)
		if err != nil || cert == nil || len(cert.Certificate) == 0 {
			return Identity{}, fmt.Errorf("no client certificate: %v", err)
		}
		der = cert.Certificate[0]
	case len(tc.Certificates) > 0:
		der = tc.Certificates[0].Certificate[0]
	default:
		return Identity{}, fmt.Errorf("no client certificate")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: leaf.Subject.CommonName, Roles: leaf.Subject.Organization, NotAfter: leaf.NotAfter}, nil
}
