// Package shipper is teleportbeat's main job: it reads the Teleport audit
// log (and, when configured, session recordings), maps the events to ECS,
// publishes them, and records the position the output acknowledged. The
// beater runs one shipper from teleportbeat.yml; under Elastic Agent every
// input unit runs one (runner.go).
package shipper

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/management/status"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/lock"
	"github.com/teleportbeat/teleportbeat/internal/sessions"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// Settings are what one shipper needs besides its configuration.
type Settings struct {
	Log *logp.Logger
	// RegistryRoot is the directory of the registry (path.data resolved).
	RegistryRoot string
	// StoreName names the registry's store (the beat's name).
	StoreName string
	// Audit is where audit events are published; Sessions where session
	// recordings are (the same pipeline, or one that routes them to
	// another index or data stream).
	Audit    beat.Pipeline
	Sessions beat.Pipeline
	// Stats is libbeat's stats registry (nil: counters not exposed).
	Stats *monitoring.Registry
	// Status receives health changes (Elastic Agent's unit status).
	Status status.StatusReporter
}

// Run ships until ctx is done. It returns an error only for what retrying
// cannot fix (bad credentials files, an unusable registry).
func Run(ctx context.Context, cfg config.Config, s Settings) error {
	log := s.Log
	creds, err := teleport.NewCredentials(cfg.Teleport)
	if err != nil {
		return err
	}
	teleport.WarnReadableSecrets(log.Named("teleport"), cfg.Teleport)
	conn := teleport.NewConn(cfg.Teleport, creds, log.Named("teleport"))
	defer conn.Close()
	teleport.LogExpiry(log.Named("teleport"), creds, time.Now())
	hl := newHealth(s.Status, creds, cfg.Teleport.Addr)
	// Machine ID renews identity files on disk: follow them.
	go teleport.WatchCredentials(ctx, log.Named("teleport"), creds, cfg.Teleport.ReloadInterval, conn.Reset)

	cluster, ok := ping(ctx, log, cfg.Teleport, conn, hl)
	if !ok {
		return nil // stopped before Teleport answered
	}

	regKey := "teleport::audit::" + cluster
	reg, stored, err := cursor.OpenPosition(log, s.RegistryRoot, cfg.Registry.FilePermissions, s.StoreName, regKey, time.Now())
	if err != nil {
		return err
	}
	defer reg.Close()
	pos := startPosition(log, cfg.Audit, stored)
	committer := cursor.NewCommitter(log, reg, regKey, cfg.Registry.Flush)
	defer func() {
		if err := committer.Close(); err != nil {
			log.Errorw("Could not persist the final audit position", "error", err)
		} else if p := committer.Saved(); p != nil {
			log.Infow("Audit position saved", "window_start", p.WindowStart, "last_event_time", p.LastEventTime)
		}
	}()
	metrics := &auditMetrics{committer: committer}
	tracker := cursor.NewTracker(metrics.committed)
	metrics.tracker = tracker
	tracker.Advance(pos) // a first run records its start time at once

	client, err := s.Audit.ConnectWith(beat.ClientConfig{
		PublishMode:   beat.GuaranteedSend,
		EventListener: tracker.EventListener(),
		Processing: beat.ProcessingConfig{
			// host.* describes the Teleport host an event is about, not
			// the machine teleportbeat runs on (that is agent.*).
			DisableHost: true,
			// The mapper builds events of the types normalization would
			// produce (TestMappedEventsAreAlreadyNormalized), so the copy
			// it makes of every event is skipped.
			EventNormalization: ecs.EventNormalization(),
		},
	})
	if err != nil {
		return fmt.Errorf("connect to the publisher pipeline: %w", err)
	}
	// Closing the client also unblocks a Publish waiting for queue space.
	go func() { <-ctx.Done(); _ = client.Close() }()

	a := cfg.Audit
	reader := teleport.NewAuditReader(teleport.AuditConfig{
		EventTypes:          a.EventTypes,
		ExcludeEventTypes:   a.ExcludeEventTypes,
		BatchSize:           a.BatchSize,
		PollInterval:        a.PollInterval,
		Window:              a.Window,
		SafetyMargin:        a.SafetyMargin,
		BackoffInit:         cfg.Teleport.Backoff.Init,
		BackoffMax:          cfg.Teleport.Backoff.Max,
		BackfillConcurrency: a.BackfillConcurrency,
		Prefetch:            a.Prefetch,
		Export:              a.UseExportAPI,
		Observe:             func(err error) { hl.searched(cluster, err) },
	}, func(ctx context.Context) (teleport.Searcher, error) { return conn.AuditLog(ctx) }, log.Named("audit"))

	metrics.reader = reader
	if s.Stats != nil {
		defer metrics.register(s.Stats)()
	}
	go metrics.logProgress(log.Named("audit"), cfg.ProgressInterval, ctx.Done())

	var sess *sessions.Manager
	if sc := cfg.Sessions; sc.Enabled {
		sess = sessions.New(sessions.Config{
			Concurrency:       sc.Concurrency,
			ExcludeEventTypes: sc.ExcludeEventTypes,
			MissingTimeout:    sc.MissingTimeout,
			MissingRetry:      sc.MissingRetry,
			BackoffInit:       cfg.Teleport.Backoff.Init,
			BackoffMax:        cfg.Teleport.Backoff.Max,
			RegistryPrefix:    "teleport::session::" + cluster + "::",
			DoneRetention:     7 * 24 * time.Hour,
		}, log.Named("sessions"), reg, s.Sessions, func(ctx context.Context) (sessions.Streamer, error) { return conn.AuditLog(ctx) })
		if err := sess.Start(ctx); err != nil {
			return err
		}
		defer sess.Wait()
		metrics.sessions = sess
	}

	var locker *lock.Detector
	if lc := cfg.Lock; lc.Enabled {
		locker = lock.New(ctx, lock.Config{
			FailedAttempts: lc.FailedAttempts,
			Period:         lc.Period,
			LockFor:        lc.LockFor,
			// Failures read late (a backfill, a catch-up after an outage)
			// must not lock anyone now.
			MaxEventAge: lc.Period + a.SafetyMargin + a.PollInterval + time.Minute,
			BackoffInit: cfg.Teleport.Backoff.Init,
			BackoffMax:  cfg.Teleport.Backoff.Max,
		}, log.Named("lock"), func(ctx context.Context) (lock.Locker, error) { return conn.Client(ctx) })
		defer locker.Wait()
		metrics.locker = locker
	}

	batches := make(chan teleport.Batch, a.Prefetch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		reader.Run(ctx, *pos, batches)
	}()
	defer wg.Wait()

	log.Infow("Reading the Teleport audit log", "cluster", cluster, "window_start", pos.WindowStart, "resumed", pos.StartKey != "" || len(pos.Done) > 0, "registry", s.RegistryRoot)
	mapper := ecs.NewAuditMapper()
	var events []beat.Event
	for {
		if !waitWritable(ctx, log, committer, hl, cluster) {
			return nil
		}
		var bt teleport.Batch
		select {
		case <-ctx.Done():
			return nil
		case bt = <-batches:
		}
		if n := len(bt.Events); n > 0 {
			now := time.Now()
			events = events[:0]
			for i, e := range bt.Events {
				if sess != nil && e.Type == "session.upload" {
					// Recorded before the upload event can be acknowledged.
					sid := e.String("sid")
					if err := sess.Register(sid, e.Time); err != nil {
						log.Errorw("Cannot record the uploaded session in the registry", "session_id", sid, "error", err)
					}
				}
				if locker != nil && e.Type == "user.login" {
					if ok, isBool := e.Bool("success"); isBool && !ok {
						locker.FailedLogin(e.String("user"), e.Time)
					}
				}
				ev := mapper.Map(e, now)
				ev.Private = bt.Positions[i]
				events = append(events, ev)
			}
			tracker.Published(n)
			metrics.published.Add(int64(n))
			client.PublishAll(events)
		}
		if bt.After != nil {
			tracker.Advance(bt.After)
		}
	}
}

// waitWritable holds reading while the audit position cannot be persisted
// (path.data full or read-only): events keep their place in Teleport
// instead of being delivered without a record of it, so a crash meanwhile
// replays only what was in flight. It reports false when ctx ends first.
func waitWritable(ctx context.Context, log *logp.Logger, c *cursor.Committer, hl *health, cluster string) bool {
	select {
	case <-c.Writable():
		return true
	default:
	}
	err := c.Err()
	log.Warnw("Reading paused: the audit position cannot be persisted; free space in path.data (or make it writable) and reading resumes by itself", "error", err)
	hl.registryFailing(err)
	select {
	case <-ctx.Done():
		return false
	case <-c.Writable():
	}
	log.Infow("Reading resumed: the audit position is persisted again")
	hl.registryWritable(cluster)
	return true
}

// ping waits until the cluster answers, retrying with backoff, and returns
// its name (the registry key is per cluster).
func ping(ctx context.Context, log *logp.Logger, cfg config.Teleport, conn *teleport.Conn, hl *health) (string, bool) {
	wait := cfg.Backoff.Init
	for attempt := 1; ; attempt++ {
		pong, err := conn.Ping(ctx)
		if err == nil {
			log.Infow("Connected to Teleport", "cluster", pong.ClusterName, "version", pong.ServerVersion, "addr", cfg.Addr)
			if id, err := conn.CurrentIdentity(); err == nil {
				log.Infow("Teleport identity", "user", id.User, "roles", id.Roles, "expires", id.NotAfter.UTC().Format(time.RFC3339))
			}
			hl.connected(pong.ClusterName)
			return pong.ClusterName, true
		}
		if ctx.Err() != nil {
			return "", false
		}
		conn.Reset()
		hl.unreachable(err)
		log.Warnw("Cannot reach Teleport; retrying", "addr", cfg.Addr, "error", err, "attempt", attempt, "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false
		case <-t.C:
		}
		wait = min(2*wait, cfg.Backoff.Max)
	}
}

// startPosition is the stored position, or on the very first run the
// configured start time (default: now).
func startPosition(log *logp.Logger, a config.Audit, stored *cursor.Position) *cursor.Position {
	start := a.Start()
	if stored != nil {
		if !start.IsZero() {
			log.Infow("Resuming from the registry; teleportbeat.audit.start_time applies to the first run only (delete the registry to start over)", "start_time", start, "registry_window_start", stored.WindowStart)
		}
		return stored
	}
	if start.IsZero() {
		start = time.Now().UTC().Truncate(time.Second)
	}
	return &cursor.Position{WindowStart: start}
}
