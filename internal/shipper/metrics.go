package shipper

import (
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/lock"
	"github.com/teleportbeat/teleportbeat/internal/sessions"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// auditMetrics are the audit pipeline's counters, exposed under
// teleportbeat.audit in libbeat's stats registry (the /stats endpoint of
// http.enabled, and Stack Monitoring) and logged periodically.
type auditMetrics struct {
	reader    *teleport.AuditReader
	tracker   *cursor.Tracker[*cursor.Position]
	committer *cursor.Committer
	sessions  *sessions.Manager // nil when session recordings are not shipped
	locker    *lock.Detector    // nil when locking is off

	published     atomic.Int64
	lastEventTime atomic.Int64 // unix nanoseconds of the newest acknowledged event
}

// committed records an acknowledged position, then persists it.
func (m *auditMetrics) committed(p *cursor.Position) {
	if !p.LastEventTime.IsZero() {
		m.lastEventTime.Store(p.LastEventTime.UnixNano())
	}
	m.committer.Commit(p)
}

// lag is how far behind now the newest acknowledged event is (0 before the
// first one).
func (m *auditMetrics) lag(now time.Time) time.Duration {
	t := m.lastEventTime.Load()
	if t == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, t))
}

func (m *auditMetrics) register(stats *monitoring.Registry) func() {
	reg := stats.GetOrCreateRegistry("teleportbeat")
	monitoring.NewFunc(reg, "audit", func(_ monitoring.Mode, v monitoring.Visitor) {
		v.OnRegistryStart()
		defer v.OnRegistryFinished()
		s := &m.reader.Stats
		monitoring.ReportInt(v, "events_read", s.Events.Load())
		monitoring.ReportInt(v, "events_excluded", s.Excluded.Load())
		monitoring.ReportInt(v, "events_published", m.published.Load())
		monitoring.ReportInt(v, "events_acked", int64(m.tracker.Acked()))
		monitoring.ReportInt(v, "events_in_flight", int64(m.tracker.InFlight()))
		monitoring.ReportInt(v, "pages", s.Pages.Load())
		monitoring.ReportInt(v, "search_errors", s.SearchErrors.Load())
		monitoring.ReportInt(v, "export_chunks", s.ExportChunks.Load())
		monitoring.ReportInt(v, "export_errors", s.ExportErrors.Load())
		monitoring.ReportInt(v, "backfill_parts", s.BackfillParts.Load())
		monitoring.ReportInt(v, "export_readers", s.ExportReaders.Load())
		if pages := s.Pages.Load(); pages > 0 {
			monitoring.ReportFloat(v, "search_latency_ms", float64(s.SearchNanos.Load())/float64(pages)/1e6)
		}
		monitoring.ReportFloat(v, "lag_seconds", m.lag(time.Now()).Seconds())
		monitoring.ReportBool(v, "caught_up", m.reader.CaughtUp())
		monitoring.ReportBool(v, "registry_writable", m.committer.Err() == nil)
		if m.locker != nil {
			monitoring.ReportInt(v, "locks_created", m.locker.Created.Load())
			monitoring.ReportInt(v, "lock_errors", m.locker.Errors.Load())
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
			monitoring.ReportInt(v, "active", s.Active.Load())
			monitoring.ReportInt(v, "pending", int64(m.sessions.Pending()))
			monitoring.ReportInt(v, "events_published", s.EventsPublished.Load())
			monitoring.ReportInt(v, "events_excluded", s.EventsExcluded.Load())
			monitoring.ReportInt(v, "stream_errors", s.StreamErrors.Load())
		}, monitoring.Report)
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
	lastAcked, lastTime := m.tracker.Acked(), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			acked := m.tracker.Acked()
			rate := float64(acked-lastAcked) / now.Sub(lastTime).Seconds()
			lastAcked, lastTime = acked, now
			fields := []any{
				"events_acked", acked, "events_per_second", int64(rate),
				"events_in_flight", m.tracker.InFlight(), "caught_up", m.reader.CaughtUp(),
				"search_errors", m.reader.Stats.SearchErrors.Load(), "export_errors", m.reader.Stats.ExportErrors.Load(),
			}
			if t := m.lastEventTime.Load(); t != 0 {
				fields = append(fields, "lag", m.lag(now).Round(time.Second).String(), "last_event_time", time.Unix(0, t).UTC().Format(time.RFC3339))
			}
			log.Infow("Audit progress", fields...)
		}
	}
}
