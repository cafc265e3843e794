// Package input is teleportbeat's main job: it reads the Teleport audit
// log (and, when configured, session recordings), maps the events to ECS,
// publishes them, and records the position the output acknowledged. The
// beater runs one input from teleportbeat.yml; under Elastic Agent every
// input unit runs one (runner.go).
package input

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
	"github.com/teleportbeat/teleportbeat/internal/audit"
	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/lockout"
	"github.com/teleportbeat/teleportbeat/internal/retry"
	"github.com/teleportbeat/teleportbeat/internal/sessions"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// Settings are what one input needs besides its configuration.
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

	// Set by RunClusters for each cluster of several: the registry they
	// share, the claim on a cluster's name (one reader per cluster), and
	// that the figures go under the cluster's name.
	Registry   *cursor.Shared
	Claim      func(cluster string) error
	PerCluster bool
}

// Run ships until ctx is done. It returns an error only for what retrying
// cannot fix (bad credentials files, an unusable registry).
func Run(ctx context.Context, cfg config.Config, s Settings) error {
	log := s.Log
	conn, hl, err := connect(ctx, log, cfg, s)
	if err != nil {
		return err
	}
	defer conn.Close()
	cluster, ok := ping(ctx, log, cfg.Teleport, conn, hl)
	if !ok {
		return nil // stopped before Teleport answered
	}

	if s.Claim != nil {
		if err := s.Claim(cluster); err != nil {
			hl.misconfigured(err)
			return err
		}
	}
	regKey := cursor.AuditKey(cluster)
	var lateSet *shipped.Set
	if len(cfg.Audit.LateEvents.Ages()) > 0 {
		lateSet = shipped.NewSet(cfg.Audit.LateEvents.MaxTracked)
	}
	opened, err := openPosition(log, cfg, s, regKey)
	if err != nil {
		return err
	}
	var attach func() []byte // the late-event set, kept with the position's backup
	if lateSet != nil {
		attach = lateSet.Encoded
		if len(opened.Attachment) > 0 {
			if err := lateSet.UnmarshalBinary(opened.Attachment); err != nil {
				log.Warnw("The events shipped recently, kept with the position's backup, cannot be read; sweeps of the recent past may send some of them again (Elasticsearch keeps one copy of each)", "file", cursor.BackupPath(s.RegistryRoot, s.StoreName, regKey), "error", err)
			}
		}
	}
	reg := opened.Registry
	if s.Registry == nil {
		defer reg.Close() // its own; a shared one is RunClusters'
	}
	pos := startPosition(log, cfg, opened, time.Now())
	committer := cursor.NewCommitter(log, reg, regKey, cfg.Registry.Flush,
		cursor.BackupSaver(log, cursor.BackupPath(s.RegistryRoot, s.StoreName, regKey), cfg.Registry.FilePermissions, backupEvery, attach))
	defer func() {
		if err := committer.Close(); err != nil {
			log.Errorw("Could not persist the final audit position", "error", err)
		} else if p := committer.Saved(); p != nil {
			log.Infow("Audit position saved", "window_start", p.WindowStart, "last_event_time", p.LastEventTime)
		}
	}()

	metrics := &auditMetrics{committer: committer, lateSet: lateSet}
	var record *shipped.Record // the recheck's record of shipped events
	if lateSet != nil && cfg.Audit.LateEvents.Recheck > 0 {
		record = shipped.OpenRecord(cursor.ShippedDir(s.RegistryRoot, s.StoreName, regKey))
		defer record.Close()
	}
	lag := &audit.Lag{}
	metrics.teleportLag = lag
	reader := audit.NewReader(readerConfig(cfg, lateSet, record, lag, func(err error) { hl.searched(cluster, err) }),
		func(ctx context.Context) (audit.Searcher, error) { return conn.AuditLog(ctx) }, log.Named("audit"))
	metrics.reader = reader
	pub, err := cursor.NewPublisher(s.Audit, cursor.PublisherConfig[*cursor.Position]{
		Commit: committer.Commit,
		OnACK:  reader.Acked,
	})
	if err != nil {
		return fmt.Errorf("connect to the publisher pipeline: %w", err)
	}
	metrics.progress = pub
	pub.Advance(pos) // a first run records its start time at once
	// Closing the client also unblocks a Publish waiting for queue space.
	go func() { <-ctx.Done(); _ = pub.Close() }()

	mapper := ecs.NewAuditMapper().WithCluster(cluster)
	metrics.mapper = mapper

	// Observers see each batch's events before the mapper takes their
	// fields: the session.upload registration (recorded before the upload
	// event can be acknowledged) and the failed-login lock.
	var observers []observer
	if cfg.Sessions.Enabled {
		sess, obs, err := startSessions(ctx, log, cfg, cluster, reg, s.Sessions, conn)
		if err != nil {
			return err
		}
		defer sess.Wait()
		metrics.sessions = sess
		observers = append(observers, obs)
	}
	if cfg.Lock.Enabled {
		locker, obs := startLocker(ctx, log, cfg, conn)
		defer locker.Wait()
		metrics.locker = locker
		observers = append(observers, obs)
	}
	if cfg.Respond.Enabled {
		self := ""
		if id, err := conn.CurrentIdentity(); err == nil {
			self = id.User
		}
		var wg sync.WaitGroup
		defer wg.Wait()
		srv, err := startRespond(ctx, log.Named("respond"), cfg.Respond, conn, self, &wg)
		if err != nil {
			// The endpoint is not up; shipping goes on without it.
			log.Errorw("The response endpoint cannot start: lock requests are not answered (events are shipped all the same)", "error", err)
			hl.partly(fmt.Errorf("response endpoint: %w", err))
		}
		metrics.respond = srv
	}
	// Registered once every part is in place: the sessions' counters are
	// only there when the manager is (registered before it, /stats had
	// none).
	if s.Stats != nil {
		name := ""
		if s.PerCluster {
			name = cluster
		}
		defer metrics.register(s.Stats, name)()
	}
	go metrics.logProgress(log.Named("audit"), cfg.ProgressInterval, ctx.Done())

	batches := make(chan audit.Batch, cfg.Audit.Prefetch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		reader.Run(ctx, *pos, batches)
	}()
	defer wg.Wait()

	log.Infow("Reading the Teleport audit log", "cluster", cluster, "window_start", pos.WindowStart, "resumed", pos.StartKey != "" || len(pos.Done) > 0, "registry", s.RegistryRoot,
		"late_events_max_delay", cfg.Audit.LateEvents.MaxDelay.String())
	p := &pump{
		batches:   batches,
		observers: observers,
		mapper:    mapper,
		pub:       pub,
		hold:      func(ctx context.Context) bool { return waitWritable(ctx, log, committer, hl, cluster) },
		now:       time.Now,
	}
	p.run(ctx)
	return nil
}

// openPosition is the cluster's position: from the registry the clusters
// share, or from a registry of its own.
func openPosition(log *logp.Logger, cfg config.Config, s Settings, key string) (cursor.Opened, error) {
	if s.Registry != nil {
		return s.Registry.Position(key), nil
	}
	return cursor.OpenPosition(log, s.RegistryRoot, cfg.Registry.FilePermissions, s.StoreName, key, time.Now())
}

// connect opens the connection to Teleport with the configured identity,
// follows the identity file as Machine ID renews it, and returns the
// connection with the health it reports to.
func connect(ctx context.Context, log *logp.Logger, cfg config.Config, s Settings) (*teleport.Conn, *health, error) {
	creds, err := teleport.NewCredentials(cfg.Teleport)
	if err != nil {
		return nil, nil, err
	}
	teleport.WarnReadableSecrets(log.Named("teleport"), cfg.Teleport)
	conn := teleport.NewConn(cfg.Teleport, creds, log.Named("teleport"))
	teleport.LogExpiry(log.Named("teleport"), creds, time.Now())
	hl := newHealth(s.Status, creds, cfg.Teleport.Addr)
	// Machine ID renews identity files on disk: follow them.
	go teleport.WatchCredentials(ctx, log.Named("teleport"), creds, cfg.Teleport.ReloadInterval, conn.Reset)
	return conn, hl, nil
}

// sessionDoneRetention is how long a finished session is remembered in the
// registry (so that a late second upload event of it is not shipped again).
const sessionDoneRetention = 7 * 24 * time.Hour

// backupEvery is how often the position's backup file (with the set of
// events shipped recently) is written; what a crash loses of it is only
// sent again.
const backupEvery = 5 * time.Second

// readerConfig is the audit reader's configuration from teleportbeat.yml.
func readerConfig(cfg config.Config, set *shipped.Set, record *shipped.Record, lag *audit.Lag, observe func(error)) audit.Config {
	a := cfg.Audit
	return audit.Config{
		EventTypes:          a.EventTypes,
		ExcludeEventTypes:   a.ExcludeEventTypes,
		BatchSize:           a.BatchSize,
		PollInterval:        a.PollInterval,
		PollIntervalMin:     a.PollIntervalMin,
		Window:              a.Window,
		SafetyMargin:        a.SafetyMargin,
		BackoffInit:         cfg.Teleport.Backoff.Init,
		BackoffMax:          cfg.Teleport.Backoff.Max,
		BackfillConcurrency: a.BackfillConcurrency,
		Prefetch:            a.Prefetch,
		Export:              a.UseExportAPI,
		Late:                audit.LateConfig{Ages: a.LateEvents.Ages(), Set: set, Lag: lag, Recheck: a.LateEvents.Recheck, Record: record},
		Observe:             observe,
	}
}

// waitWritable holds reading while the audit position cannot be persisted
// (path.data full or read-only): events keep their place in Teleport
// instead of being delivered without a record of it, so a crash meanwhile
// replays only what was in flight. It reports false when ctx ends first.
func waitWritable(ctx context.Context, log *logp.Logger, c *cursor.Committer[*cursor.Position], hl *health, cluster string) bool {
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
	bo := retry.Backoff{Init: cfg.Backoff.Init, Max: cfg.Backoff.Max}
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
		wait := bo.Next()
		log.Warnw("Cannot reach Teleport; retrying", "addr", cfg.Addr, "error", err.Error(), "attempt", attempt, "retry_in", wait.String())
		log.Debugw("Teleport connection error, in full", "error", teleport.Details(err))
		if !retry.Sleep(ctx, wait) {
			return "", false
		}
	}
}

// startPosition is where reading starts: the stored position; after an
// unreadable registry without a usable backup, start_time or the recovery
// horizon before the registry's last write (never now: the events since
// the last acknowledged position would be lost); on the very first run,
// start_time, by default the late-event horizon before now (events that
// are late, or timed by a Teleport clock behind this host's, are not lost
// at the start).
func startPosition(log *logp.Logger, cfg config.Config, o cursor.Opened, now time.Time) *cursor.Position {
	start := cfg.Audit.Start()
	if o.Position != nil {
		if !start.IsZero() && !o.FromBackup {
			// A start_time changed after the first run is ignored: say so
			// loudly when it asks for something the registry does not do.
			at := o.Position.LastEventTime
			if at.IsZero() {
				at = o.Position.WindowStart
			}
			// (A start_time before the registry's position is the first
			// run's, or a wish to backfill more; it is said at info level.)
			if start.After(at.Add(time.Minute)) {
				log.Warnw("teleportbeat.audit.start_time differs from where the registry resumes, and applies to the first run only: reading resumes from the registry. To read from start_time, stop teleportbeat and delete the registry directory",
					"start_time", start, "resumes_at", at, "registry", "path.data/registry")
			} else {
				log.Infow("Resuming from the registry; teleportbeat.audit.start_time applies to the first run only (delete the registry to start over)", "start_time", start, "registry_window_start", o.Position.WindowStart)
			}
		}
		return o.Position
	}
	if o.MovedAside != "" && start.IsZero() {
		last := now
		if !o.LastWrite.IsZero() && o.LastWrite.Before(now) {
			last = o.LastWrite
		}
		start = last.Add(-cfg.Registry.RecoveryHorizon).UTC().Truncate(time.Second)
		log.Warnw("Reading starts again from the recovery horizon before the unreadable registry's last write (teleportbeat.registry.recovery_horizon)", "start", start, "registry_last_written", o.LastWrite)
		return &cursor.Position{WindowStart: start}
	}
	if start.IsZero() {
		start = now.Add(-cfg.Audit.LateEvents.MaxDelay).UTC().Truncate(time.Second)
	}
	return &cursor.Position{WindowStart: start}
}

// startSessions starts the session recording manager and returns it with
// the observer that registers each uploaded session.
func startSessions(ctx context.Context, log *logp.Logger, cfg config.Config, cluster string, reg *cursor.Registry, pipeline beat.Pipeline, conn *teleport.Conn) (*sessions.Manager, observer, error) {
	sc := cfg.Sessions
	sess := sessions.New(sessions.Config{
		Concurrency:       sc.Concurrency,
		ExcludeEventTypes: sc.ExcludeEventTypes,
		MissingTimeout:    sc.MissingTimeout,
		MissingRetry:      sc.MissingRetry,
		BackoffInit:       cfg.Teleport.Backoff.Init,
		BackoffMax:        cfg.Teleport.Backoff.Max,
		RegistryPrefix:    "teleport::session::" + cluster + "::",
		Cluster:           cluster,
		Flush:             cfg.Registry.Flush,
		DoneRetention:     sessionDoneRetention,
	}, log.Named("sessions"), reg, pipeline, func(ctx context.Context) (sessions.Streamer, error) { return conn.AuditLog(ctx) })
	if err := sess.Start(ctx); err != nil {
		return nil, nil, err
	}
	return sess, func(e *event.Event) {
		if e.Type != "session.upload" {
			return
		}
		sid := e.String("sid")
		if err := sess.Register(sid, e.Time); err != nil {
			log.Errorw("Cannot record the uploaded session in the registry", "session_id", sid, "error", err)
		}
	}, nil
}

// startLocker starts the failed-login locker and returns it with the
// observer that counts failed logins.
func startLocker(ctx context.Context, log *logp.Logger, cfg config.Config, conn *teleport.Conn) (*lockout.Detector, observer) {
	lc := cfg.Lock
	locker := lockout.New(ctx, lockout.Config{
		FailedAttempts: lc.FailedAttempts,
		Period:         lc.Period,
		LockFor:        lc.LockFor,
		// Failures read late (a backfill, a catch-up after an outage)
		// must not lock anyone now.
		MaxEventAge: lc.Period + cfg.Audit.SafetyMargin + cfg.Audit.PollInterval + time.Minute,
		BackoffInit: cfg.Teleport.Backoff.Init,
		BackoffMax:  cfg.Teleport.Backoff.Max,
	}, log.Named("lock"), func(ctx context.Context) (lockout.Locker, error) { return conn.Client(ctx) })
	return locker, func(e *event.Event) {
		if e.Type != "user.login" {
			return
		}
		if ok, isBool := e.Bool("success"); isBool && !ok {
			locker.FailedLogin(e.String("user"), e.Time)
		}
	}
}
