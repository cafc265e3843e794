package input

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/respond"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// startRespond starts the response endpoint of teleportbeat.respond,
// beside the shipping (its own listener and goroutines: a request never
// waits on events, nor events on a request). self is teleportbeat's own
// Teleport user, never locked. The endpoint stops with ctx; wg says when.
func startRespond(ctx context.Context, log *logp.Logger, cfg config.Respond, conn *teleport.Conn, self string, wg *sync.WaitGroup) (*respond.Server, error) {
	cert, err := tls.LoadX509KeyPair(cfg.SSL.Certificate, cfg.SSL.Key)
	if err != nil {
		return nil, fmt.Errorf("teleportbeat.respond.ssl: %w", err)
	}
	var cas [][]byte
	for _, ca := range cfg.SSL.CertificateAuthorities {
		pem, err := config.ReadCA(ca)
		if err != nil {
			return nil, fmt.Errorf("teleportbeat.respond.ssl.certificate_authorities: %w", err)
		}
		cas = append(cas, pem)
	}
	tlsCfg, err := respond.ServerTLS(cert, cas)
	if err != nil {
		return nil, err
	}
	users := append([]string(nil), cfg.NeverLock.Users...)
	if self != "" {
		users = append(users, self)
	}
	srv := respond.New(respond.Config{
		TLS:            tlsCfg,
		NeverLockUsers: users,
		NeverLockRoles: cfg.NeverLock.Roles,
		TTLMin:         cfg.TTL.Min,
		TTLMax:         cfg.TTL.Max,
		MaxBodyBytes:   int64(cfg.MaxBodyBytes),
		Timeout:        cfg.Timeout,
	}, log, func(ctx context.Context) (respond.Locker, error) { return conn.Client(ctx) })
	l, err := respond.Listen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	log.Infow("Response endpoint listening: POST "+respond.Path+" with a client certificate asks for a Teleport lock", "listen", l.Addr().String(), "never_lock_users", users, "never_lock_roles", cfg.NeverLock.Roles, "ttl_min", cfg.TTL.Min.String(), "ttl_max", cfg.TTL.Max.String())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, l); err != nil {
			log.Errorw("The response endpoint stopped", "error", err)
		}
	}()
	return srv, nil
}
