package input

import (
	"math"
	"strings"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/internal/audit"
	"github.com/teleportbeat/teleportbeat/internal/audit/shipped"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/lockout"
	"github.com/teleportbeat/teleportbeat/internal/respond"
	"github.com/teleportbeat/teleportbeat/internal/sessions"
)

// auditMetrics are the audit pipeline's counters, exposed under
// teleportbeat.audit in libbeat's stats registry (the /stats endpoint of
// http.enabled, and Stack Monitoring) and logged periodically.
type auditMetrics struct {
	reader      *audit.Reader
	progress    progress
	committer   *cursor.Committer[*cursor.Position]
	lateSet     *shipped.Set      // nil without late-event sweeps
	teleportLag *audit.Lag        // nil without late-event sweeps
	sessions    *sessions.Manager // nil when session recordings are not shipped
	locker      *lockout.Detector // nil when locking is off
	respond     *respond.Server   // nil without the response endpoint
	mapper      *ecs.Mapper
}

// progress is what the publisher counts.
type progress interface {
	Published() int64
	Acked() uint64
	InFlight() uint64
}

// lastEventTime is the time of the newest acknowledged event (zero before
// the first): the newest position committed carries it.
func (m *auditMetrics) lastEventTime() time.Time {
	if p := m.committer.Latest(); p != nil {
		return p.LastEventTime
	}
	return time.Time{}
}

// lag is how far behind now the newest acknowledged event is (0 before the
// first one).
func (m *auditMetrics) lag(now time.Time) time.Duration {
	t := m.lastEventTime()
	if t.IsZero() {
		return 0
	}
	return now.Sub(t)
}

// register exposes the figures under teleportbeat (one cluster), or under
// teleportbeat.clusters.<cluster> when the beat reads several (the
// cluster's name with its dots as underscores: monitoring paths split at
// dots).
func (m *auditMetrics) register(stats *monitoring.Registry, cluster string) func() {
	parent := stats.GetOrCreateRegistry("teleportbeat")
	reg, name := parent, "teleportbeat"
	if cluster != "" {
		name = strings.ReplaceAll(cluster, ".", "_")
		reg = parent.GetOrCreateRegistry("clusters").GetOrCreateRegistry(name)
	}
	monitoring.NewFunc(reg, "audit", func(_ monitoring.Mode, v monitoring.Visitor) {
		v.OnRegistryStart()
		defer v.OnRegistryFinished()
		s := &m.reader.Stats
		monitoring.ReportInt(v, "events_read", s.Events.Load())
		monitoring.ReportInt(v, "events_excluded", s.Excluded.Load())
		monitoring.ReportInt(v, "events_published", m.progress.Published())
		monitoring.ReportInt(v, "events_acked", int64(m.progress.Acked()))
		monitoring.ReportInt(v, "events_in_flight", int64(m.progress.InFlight()))
		monitoring.ReportInt(v, "pages", s.Pages.Load())
		monitoring.ReportInt(v, "search_errors", s.SearchErrors.Load())
		monitoring.ReportInt(v, "export_chunks", s.ExportChunks.Load())
		monitoring.ReportInt(v, "export_errors", s.ExportErrors.Load())
		monitoring.ReportInt(v, "backfill_parts", s.BackfillParts.Load())
		monitoring.ReportInt(v, "export_readers", s.ExportReaders.Load())
		monitoring.ReportInt(v, "start_keys_refused", s.KeysRefused.Load())
		monitoring.ReportFloat(v, "poll_wait_seconds", time.Duration(s.PollWait.Load()).Seconds())
		if pages := s.Pages.Load(); pages > 0 {
			monitoring.ReportFloat(v, "search_latency_ms", float64(s.SearchNanos.Load())/float64(pages)/1e6)
		}
		monitoring.ReportFloat(v, "lag_seconds", m.lag(time.Now()).Seconds())
		monitoring.ReportBool(v, "caught_up", m.reader.CaughtUp())
		monitoring.ReportBool(v, "waiting_for_lag", s.WaitingForLag.Load())
		monitoring.ReportBool(v, "registry_writable", m.committer.Err() == nil)
		l := &m.reader.Late
		monitoring.ReportInt(v, "late_events_caught", l.Caught.Load())
		monitoring.ReportInt(v, "late_events_read", l.Read.Load())
		monitoring.ReportInt(v, "late_sweeps", l.Sweeps.Load())
		monitoring.ReportInt(v, "late_events_rechecked", l.Rechecked.Load())
		monitoring.ReportInt(v, "late_recheck_read", l.RecheckRead.Load())
		monitoring.ReportFloat(v, "late_max_seconds", time.Duration(l.MaxLatency.Load()).Seconds())
		if m.lateSet != nil {
			monitoring.ReportInt(v, "late_tracked", int64(m.lateSet.Len()))
			monitoring.ReportInt(v, "late_forgotten", m.lateSet.Dropped())
		}
		if m.teleportLag != nil {
			if d, ok := m.teleportLag.Measured(); ok {
				monitoring.ReportFloat(v, "teleport_lag_seconds", d.Seconds())
			}
		}
		if m.mapper != nil {
			ms := m.mapper.Stats()
			monitoring.ReportInt(v, "events_misfit", ms.Misfits)
			monitoring.ReportInt(v, "events_moved", ms.Moved)
			monitoring.ReportInt(v, "uid_collisions", ms.UIDCollisions)
		}
		if m.locker != nil {
			monitoring.ReportInt(v, "locks_created", m.locker.Created.Load())
			monitoring.ReportInt(v, "lock_errors", m.locker.Errors.Load())
		}
		if m.respond != nil {
			monitoring.ReportInt(v, "response_locks_created", m.respond.Created.Load())
			monitoring.ReportInt(v, "response_requests_refused", m.respond.Refused.Load())
			monitoring.ReportInt(v, "response_lock_errors", m.respond.Errors.Load())
		}
	}, monitoring.Report)
	if m.sessions != nil {
		monitoring.NewFunc(reg, "sessions", func(_ monitoring.Mode, v monitoring.Visitor) {
			v.OnRegistryStart()
			defer v.OnRegistryFinished()
			s := &m.sessions.Stats
			monitoring.ReportInt(v, "registered", s.Registered.Load())
			monitoring.ReportInt(v, "completed", s.Completed.Load())
			monitoring.ReportInt(v, "missing", s.Missing.Load())
			monitoring.ReportInt(v, "waiting_for_upload", s.Waiting.Load())
			monitoring.ReportInt(v, "active", s.Active.Load())
			monitoring.ReportInt(v, "pending", int64(m.sessions.Pending()))
			monitoring.ReportInt(v, "events_published", s.EventsPublished.Load())
			monitoring.ReportInt(v, "events_excluded", s.EventsExcluded.Load())
			monitoring.ReportInt(v, "stream_errors", s.StreamErrors.Load())
		}, monitoring.Report)
	}
	if cluster != "" {
		return func() { parent.GetOrCreateRegistry("clusters").Remove(name) }
	}
	return func() { stats.Remove("teleportbeat") }
}

// logProgress logs progress and lag every interval until done is closed.
func (m *auditMetrics) logProgress(log *logp.Logger, interval time.Duration, done <-chan struct{}) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lastAcked, lastTime := m.progress.Acked(), time.Now()
	lastCaught := m.reader.Late.Caught.Load()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			acked := m.progress.Acked()
			rate := float64(acked-lastAcked) / now.Sub(lastTime).Seconds()
			lastAcked, lastTime = acked, now
			fields := []any{
				"events_acked", acked, "events_per_second", math.Round(rate*100) / 100,
				"events_in_flight", m.progress.InFlight(), "caught_up", m.reader.CaughtUp(),
				"search_errors", m.reader.Stats.SearchErrors.Load(), "export_errors", m.reader.Stats.ExportErrors.Load(),
			}
			// lag and caught_up are about the head of the log: events that
			// became searchable late are said apart, with how late they
			// were (a stream of late events otherwise hides behind a
			// small lag and caught_up: true).
			if c := m.reader.Late.Caught.Load(); c > 0 {
				fields = append(fields, "late_events_caught", c)
				if c > lastCaught {
					fields = append(fields, "late_events_in_interval", c-lastCaught,
						"late_by_max", time.Duration(m.reader.Late.RecentMax.Swap(0)).Round(time.Second).String())
				}
				lastCaught = c
			}
			if t := m.lastEventTime(); !t.IsZero() {
				fields = append(fields, "lag", m.lag(now).Round(time.Second).String(), "last_event_time", t.UTC().Format(time.RFC3339))
			}
			log.Infow("Audit progress", fields...)
		}
	}
}
