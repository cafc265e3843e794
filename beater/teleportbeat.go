// Package beater is teleportbeat's libbeat Beater: it wires the Teleport
// audit reader to the mapper and the publisher pipeline, and the
// pipeline's acknowledgements to the registry.
package beater

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/elastic/beats/v7/libbeat/beat"
	conf "github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/paths"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/lock"
	"github.com/teleportbeat/teleportbeat/internal/sessions"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// Teleportbeat is the Beater.
type Teleportbeat struct {
	cfg   config.Config
	log   *logp.Logger
	paths *paths.Path

	stopOnce sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

// New is teleportbeat's beat.Creator.
func New(b *beat.Beat, section *conf.C) (beat.Beater, error) {
	cfg, err := config.Load(section)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := b.Paths
	if p == nil {
		p = paths.Paths
	}
	return &Teleportbeat{cfg: cfg, log: b.Info.Logger.Named("teleportbeat"), paths: p, ctx: ctx, cancel: cancel}, nil
}

// Stop asks Run to return.
func (tb *Teleportbeat) Stop() {
	tb.stopOnce.Do(func() {
		tb.log.Info("Stopping teleportbeat")
		tb.cancel()
	})
}

// Run streams the audit log until Stop.
func (tb *Teleportbeat) Run(b *beat.Beat) error {
	ctx := tb.ctx
	creds, err := teleport.NewCredentials(tb.cfg.Teleport)
	if err != nil {
		return err
	}
	teleport.WarnReadableSecrets(tb.log.Named("teleport"), tb.cfg.Teleport)
	conn := teleport.NewConn(tb.cfg.Teleport, creds, tb.log.Named("teleport"))
	defer conn.Close()
	teleport.LogExpiry(tb.log.Named("teleport"), creds, time.Now())
	// Machine ID renews identity files on disk: follow them.
	go teleport.WatchCredentials(ctx, tb.log.Named("teleport"), creds, tb.cfg.Teleport.ReloadInterval, conn.Reset)

	cluster, ok := tb.ping(ctx, conn)
	if !ok {
		return nil // stopped before Teleport answered
	}

	root := tb.paths.Resolve(paths.Data, tb.cfg.Registry.Path)
	regKey := "teleport::audit::" + cluster
	reg, stored, err := cursor.OpenPosition(tb.log, root, tb.cfg.Registry.FilePermissions, b.Info.Beat, regKey, time.Now())
	if err != nil {
		return err
	}
	defer reg.Close()
	pos := tb.startPosition(stored)
	committer := cursor.NewCommitter(tb.log, reg, regKey, tb.cfg.Registry.Flush)
	defer func() {
		if err := committer.Close(); err != nil {
			tb.log.Errorw("Could not persist the final audit position", "error", err)
		} else if p := committer.Saved(); p != nil {
			tb.log.Infow("Audit position saved", "window_start", p.WindowStart, "last_event_time", p.LastEventTime)
		}
	}()
	metrics := &auditMetrics{committer: committer}
	tracker := cursor.NewTracker(metrics.committed)
	metrics.tracker = tracker
	tracker.Advance(pos) // a first run records its start time at once

	client, err := b.Publisher.ConnectWith(beat.ClientConfig{
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

	a := tb.cfg.Audit
	reader := teleport.NewAuditReader(teleport.AuditConfig{
		EventTypes:          a.EventTypes,
		ExcludeEventTypes:   a.ExcludeEventTypes,
		BatchSize:           a.BatchSize,
		PollInterval:        a.PollInterval,
		Window:              a.Window,
		SafetyMargin:        a.SafetyMargin,
		BackoffInit:         tb.cfg.Teleport.Backoff.Init,
		BackoffMax:          tb.cfg.Teleport.Backoff.Max,
		BackfillConcurrency: a.BackfillConcurrency,
		Prefetch:            a.Prefetch,
		Export:              a.UseExportAPI,
	}, func(ctx context.Context) (teleport.Searcher, error) { return conn.Client(ctx) }, tb.log.Named("audit"))

	metrics.reader = reader
	defer metrics.register(b.Monitoring.StatsRegistry())()
	go metrics.logProgress(tb.log.Named("audit"), tb.cfg.ProgressInterval, ctx.Done())

	var sess *sessions.Manager
	if sc := tb.cfg.Sessions; sc.Enabled {
		sess = sessions.New(sessions.Config{
			Concurrency:       sc.Concurrency,
			ExcludeEventTypes: sc.ExcludeEventTypes,
			MissingTimeout:    sc.MissingTimeout,
			MissingRetry:      sc.MissingRetry,
			BackoffInit:       tb.cfg.Teleport.Backoff.Init,
			BackoffMax:        tb.cfg.Teleport.Backoff.Max,
			RegistryPrefix:    "teleport::session::" + cluster + "::",
			DoneRetention:     7 * 24 * time.Hour,
		}, tb.log.Named("sessions"), reg, b.Publisher, func(ctx context.Context) (sessions.Streamer, error) { return conn.Client(ctx) })
		if err := sess.Start(ctx); err != nil {
			return err
		}
		defer sess.Wait()
		metrics.sessions = sess
	}

	var locker *lock.Detector
	if lc := tb.cfg.Lock; lc.Enabled {
		locker = lock.New(ctx, lock.Config{
			FailedAttempts: lc.FailedAttempts,
			Period:         lc.Period,
			LockFor:        lc.LockFor,
			// Failures read late (a backfill, a catch-up after an outage)
			// must not lock anyone now.
			MaxEventAge: lc.Period + a.SafetyMargin + a.PollInterval + time.Minute,
			BackoffInit: tb.cfg.Teleport.Backoff.Init,
			BackoffMax:  tb.cfg.Teleport.Backoff.Max,
		}, tb.log.Named("lock"), func(ctx context.Context) (lock.Locker, error) { return conn.Client(ctx) })
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

	tb.log.Infow("Reading the Teleport audit log", "cluster", cluster, "window_start", pos.WindowStart, "resumed", pos.StartKey != "" || len(pos.Done) > 0, "registry", root)
	mapper := ecs.NewAuditMapper()
	var events []beat.Event
	for {
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
				if sess != nil && e.GetType() == "session.upload" {
					// Recorded before the upload event can be acknowledged.
					sid := e.GetUnstructured().GetFields()["sid"].GetStringValue()
					if err := sess.Register(sid, e.GetTime().AsTime()); err != nil {
						tb.log.Errorw("Cannot record the uploaded session in the registry", "session_id", sid, "error", err)
					}
				}
				if locker != nil && e.GetType() == "user.login" {
					f := e.GetUnstructured().GetFields()
					if ok, isBool := f["success"].GetKind().(*structpb.Value_BoolValue); isBool && !ok.BoolValue {
						locker.FailedLogin(f["user"].GetStringValue(), e.GetTime().AsTime())
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

// ping waits until the cluster answers, retrying with backoff, and returns
// its name (the registry key is per cluster).
func (tb *Teleportbeat) ping(ctx context.Context, conn *teleport.Conn) (string, bool) {
	wait := tb.cfg.Teleport.Backoff.Init
	for attempt := 1; ; attempt++ {
		pong, err := conn.Ping(ctx)
		if err == nil {
			tb.log.Infow("Connected to Teleport", "cluster", pong.ClusterName, "version", pong.ServerVersion, "addr", tb.cfg.Teleport.Addr)
			if id, err := conn.CurrentIdentity(); err == nil {
				tb.log.Infow("Teleport identity", "user", id.User, "roles", id.Roles, "expires", id.NotAfter.UTC().Format(time.RFC3339))
			}
			return pong.ClusterName, true
		}
		if ctx.Err() != nil {
			return "", false
		}
		conn.Reset()
		tb.log.Warnw("Cannot reach Teleport; retrying", "addr", tb.cfg.Teleport.Addr, "error", err, "attempt", attempt, "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false
		case <-t.C:
		}
		wait = min(2*wait, tb.cfg.Teleport.Backoff.Max)
	}
}

// startPosition is the stored position, or on the very first run the
// configured start time (default: now).
func (tb *Teleportbeat) startPosition(stored *cursor.Position) *cursor.Position {
	start := tb.cfg.Audit.Start()
	if stored != nil {
		if !start.IsZero() {
			tb.log.Infow("Resuming from the registry; teleportbeat.audit.start_time applies to the first run only (delete the registry to start over)", "start_time", start, "registry_window_start", stored.WindowStart)
		}
		return stored
	}
	if start.IsZero() {
		start = time.Now().UTC().Truncate(time.Second)
	}
	return &cursor.Position{WindowStart: start}
}
