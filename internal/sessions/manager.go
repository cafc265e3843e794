// Package sessions ships Teleport session recordings: when the audit log
// says a recording was uploaded (session.upload), a bounded pool of workers
// streams its events with StreamUnstructuredSessionEvents and publishes them
// to the teleport.session dataset. Each session's progress (the first index
// not yet acknowledged by the output) is kept in the registry, so a restart
// resumes a half-sent session where it stopped; a session is marked done
// only when every one of its events is acknowledged.
package sessions

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gravitational/trace"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/retry"
)

// Streamer is the session stream of teleport/api's client, with the events
// decoded by package event (teleport.AuditLog).
type Streamer interface {
	StreamUnstructuredSessionEvents(ctx context.Context, sessionID string, startIndex int64) (chan *event.Event, chan error)
}

// Config configures the manager.
type Config struct {
	Concurrency       int
	ExcludeEventTypes []string
	// MissingTimeout is how long after its upload event a recording that
	// cannot be found is retried before it is given up as missing.
	MissingTimeout time.Duration
	// MissingRetry is the wait between attempts at a missing recording.
	MissingRetry time.Duration
	BackoffInit  time.Duration
	BackoffMax   time.Duration
	// RegistryPrefix prefixes the registry keys of the sessions.
	RegistryPrefix string
	// Cluster is the Teleport cluster the recordings are read from.
	Cluster string
	// Flush is how often a session's progress is written at most while
	// it streams (teleportbeat.registry.flush; 0: on every ACK).
	Flush time.Duration
	// DoneRetention is how long finished sessions are remembered, so that
	// a replayed upload event does not ship a recording twice.
	DoneRetention time.Duration
}

// Stats are the manager's counters.
type Stats struct {
	Registered      atomic.Int64
	Completed       atomic.Int64
	Missing         atomic.Int64
	Waiting         atomic.Int64 // recordings not found yet, waiting for their next attempt
	Active          atomic.Int64
	EventsPublished atomic.Int64
	EventsExcluded  atomic.Int64
	StreamErrors    atomic.Int64
}

// Manager runs the session workers.
type Manager struct {
	cfg      Config
	log      *logp.Logger
	reg      *cursor.Registry
	pipeline beat.Pipeline
	streamer func(context.Context) (Streamer, error)
	mapper   *ecs.Mapper
	exclude  map[string]bool
	Stats    Stats

	mu       sync.Mutex
	known    map[string]cursor.SessionState
	queue    []queued
	attempts map[string]int // failed attempts at missing recordings
	// notFound counts "not found yet" answers since the last summary in
	// the log, said at most once per missingSummaryEvery: a backfill can
	// meet hundreds of recordings not uploaded yet at once.
	notFound     int
	notFoundSaid time.Time
	wake         chan struct{}
	wg           sync.WaitGroup
}

// queued is a session waiting for a worker, not before a time (a missing
// recording waits for its next attempt without holding a worker).
type queued struct {
	id        string
	notBefore time.Time
}

// New returns a manager; Start loads the registry and starts the workers.
func New(cfg Config, log *logp.Logger, reg *cursor.Registry, pipeline beat.Pipeline, streamer func(context.Context) (Streamer, error)) *Manager {
	ex := map[string]bool{}
	for _, t := range cfg.ExcludeEventTypes {
		ex[t] = true
	}
	return &Manager{
		cfg: cfg, log: log, reg: reg, pipeline: pipeline, streamer: streamer,
		mapper: ecs.NewSessionMapper().WithCluster(cfg.Cluster), exclude: ex,
		known: map[string]cursor.SessionState{}, attempts: map[string]int{}, wake: make(chan struct{}, 1),
	}
}

// Start resumes the sessions the registry holds and starts the workers.
func (m *Manager) Start(ctx context.Context) error {
	states, err := m.reg.Sessions(m.cfg.RegistryPrefix)
	if err != nil {
		return err
	}
	now := time.Now()
	resumed := 0
	for _, s := range states {
		if s.State != cursor.SessionPending && now.Sub(s.Updated) > m.cfg.DoneRetention {
			if err := m.reg.RemoveSession(m.cfg.RegistryPrefix, s.ID); err != nil {
				m.log.Warnw("Cannot forget an old session", "session_id", s.ID, "error", err)
			}
			continue
		}
		m.known[s.ID] = s
		if s.State == cursor.SessionPending {
			m.queue = append(m.queue, queued{id: s.ID})
			resumed++
		}
	}
	if resumed > 0 {
		m.log.Infow("Resuming session recordings", "sessions", resumed)
	}
	for i := 0; i < m.cfg.Concurrency; i++ {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.work(ctx)
		}()
	}
	m.signal()
	return nil
}

// Wait returns when every worker has stopped (after ctx is done).
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Register records that a session's recording was uploaded. It is written
// to the registry before it returns: the audit position only moves past the
// upload event after that event is acknowledged, so a session is never
// forgotten. A session already known is left alone.
func (m *Manager) Register(sessionID string, uploaded time.Time) error {
	if sessionID == "" {
		return nil
	}
	m.mu.Lock()
	if _, ok := m.known[sessionID]; ok {
		m.mu.Unlock()
		return nil
	}
	st := cursor.SessionState{ID: sessionID, UploadTime: uploaded, State: cursor.SessionPending, Updated: time.Now()}
	m.known[sessionID] = st
	m.queue = append(m.queue, queued{id: sessionID})
	m.mu.Unlock()
	m.Stats.Registered.Add(1)
	m.signal()
	return m.reg.SaveSession(m.cfg.RegistryPrefix, st)
}

// Pending returns the number of sessions queued or being streamed.
func (m *Manager) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.known {
		if s.State == cursor.SessionPending {
			n++
		}
	}
	return n
}

func (m *Manager) next(ctx context.Context) (cursor.SessionState, bool) {
	for {
		m.mu.Lock()
		now := time.Now()
		var earliest time.Time
		for i, q := range m.queue {
			if !q.notBefore.After(now) {
				m.queue = append(m.queue[:i], m.queue[i+1:]...)
				st := m.known[q.id]
				m.mu.Unlock()
				m.signal() // another worker may take the next one
				return st, true
			}
			if earliest.IsZero() || q.notBefore.Before(earliest) {
				earliest = q.notBefore
			}
		}
		m.mu.Unlock()
		var timer <-chan time.Time
		if !earliest.IsZero() {
			t := time.NewTimer(time.Until(earliest))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return cursor.SessionState{}, false
		case <-m.wake:
		case <-timer:
		}
	}
}

// retryLater puts a session back in the queue for an attempt at t.
func (m *Manager) retryLater(id string, t time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attempts[id] == 0 {
		m.Stats.Waiting.Add(1)
	}
	m.attempts[id]++
	m.queue = append(m.queue, queued{id: id, notBefore: t})
	return m.attempts[id]
}

// doneWaiting forgets the failed attempts at a recording once it is
// found or given up.
func (m *Manager) doneWaiting(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attempts[id] > 0 {
		m.Stats.Waiting.Add(-1)
		delete(m.attempts, id)
	}
}

// missingSummaryEvery is how often the log sums up the recordings not
// found yet.
const missingSummaryEvery = time.Minute

// noteNotFound counts a "not found yet" answer and reports whether to
// sum them up in the log now, with how many there were since the last
// summary.
func (m *Manager) noteNotFound(now time.Time) (say bool, since int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notFound++
	if !m.notFoundSaid.IsZero() && now.Sub(m.notFoundSaid) < missingSummaryEvery {
		return false, 0
	}
	since, m.notFound, m.notFoundSaid = m.notFound, 0, now
	return true, since
}

func (m *Manager) work(ctx context.Context) {
	for {
		st, ok := m.next(ctx)
		if !ok {
			return
		}
		m.Stats.Active.Add(1)
		m.ship(ctx, st)
		m.Stats.Active.Add(-1)
	}
}

// position is the progress carried by each published session event.
type position struct {
	next int64
	done bool
}

// skipCommitEvery bounds how many excluded events (prints) pass before
// their progress is recorded.
const skipCommitEvery = 1000

// ship streams one session from its stored progress to the end, and
// returns when every event is acknowledged, the recording is given up as
// missing, or ctx is done.
func (m *Manager) ship(ctx context.Context, st cursor.SessionState) {
	log := m.log.With("session_id", st.ID)
	finished := make(chan struct{})
	var once sync.Once
	// The session's progress is written by its own Committer, as the audit
	// position is: off libbeat's ACK goroutine, retried while the registry
	// cannot take it, and once more when the session ends (closed after
	// the publisher, deferred first).
	committer := cursor.NewSessionCommitter(m.log, m.reg, m.cfg.RegistryPrefix, st.ID, m.cfg.Flush)
	defer func() {
		if err := committer.Close(); err != nil {
			log.Errorw("Cannot persist the session recording's progress; a restart sends its events acknowledged since the last write again", "error", err)
		}
	}()
	progress := func(cur cursor.SessionState) {
		m.mu.Lock()
		m.known[cur.ID] = cur
		m.mu.Unlock()
		committer.Commit(cur)
	}
	// Each session has its own publisher: its positions (the next event
	// index) are committed to the session's registry entry on ACK.
	pub, err := cursor.NewPublisher(m.pipeline, cursor.PublisherConfig[*position]{
		Commit: func(p *position) {
			cur := st
			cur.NextIndex = p.next
			cur.State = cursor.SessionPending
			if p.done {
				cur.State = cursor.SessionDone
			}
			cur.Updated = time.Now()
			progress(cur)
			if p.done {
				once.Do(func() { close(finished) })
			}
		},
	})
	if err != nil {
		log.Errorw("Cannot connect to the publisher pipeline", "error", err)
		return
	}
	defer pub.Close()
	go func() { <-ctx.Done(); _ = pub.Close() }()

	next := st.NextIndex
	attempt := 0
	bo := retry.Backoff{Init: m.cfg.BackoffInit, Max: m.cfg.BackoffMax}
	for {
		complete, err := m.stream(ctx, st.ID, &next, pub)
		if ctx.Err() != nil {
			return
		}
		if complete {
			break
		}
		attempt++
		m.Stats.StreamErrors.Add(1)
		if trace.IsNotFound(err) {
			// Recordings can reach storage after their upload event (or
			// never, with recording off on a node): try again later
			// without holding a worker.
			age := time.Since(st.UploadTime)
			if !st.UploadTime.IsZero() && age > m.cfg.MissingTimeout {
				log.Errorw("Session recording not found, giving up", "uploaded", st.UploadTime, "waited", age.Round(time.Second).String(), "error", err)
				m.Stats.Missing.Add(1)
				m.doneWaiting(st.ID)
				missing := st
				missing.State, missing.Updated = cursor.SessionMissing, time.Now()
				progress(missing)
				return
			}
			n := m.retryLater(st.ID, time.Now().Add(m.cfg.MissingRetry))
			log.Debugw("Session recording not found yet; retrying", "attempt", n, "retry_in", m.cfg.MissingRetry.String(), "error", err)
			if say, since := m.noteNotFound(time.Now()); say {
				m.log.Warnw("Session recordings not found yet (uploads can lag behind their session.upload event); retrying each until missing_timeout after its upload",
					"waiting", m.Stats.Waiting.Load(), "not_found_answers", since, "example_session_id", st.ID,
					"retry_in", m.cfg.MissingRetry.String(), "missing_timeout", m.cfg.MissingTimeout.String())
			}
			return
		}
		wait := bo.Next()
		log.Warnw("Session recording stream failed; resuming", "next_index", next, "attempt", attempt, "retry_in", wait.String(), "error", err)
		if !retry.Sleep(ctx, wait) {
			return
		}
	}
	m.doneWaiting(st.ID)
	pub.Advance(&position{next: next, done: true})
	select {
	case <-finished:
		m.Stats.Completed.Add(1)
		log.Debugw("Session recording shipped", "events", next)
	case <-ctx.Done():
	}
}

// stream reads the recording from *next on and publishes it. It reports
// whether the stream reached its end.
func (m *Manager) stream(ctx context.Context, sid string, next *int64, pub *cursor.Publisher[*position]) (bool, error) {
	s, err := m.streamer(ctx)
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errs := s.StreamUnstructuredSessionEvents(sctx, sid, *next)
	skipped := 0
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case err := <-errs:
			if err == nil {
				continue
			}
			return false, err
		case ev, ok := <-events:
			if !ok {
				return true, nil
			}
			idx := ev.Index
			if idx < *next {
				continue // the start index is inclusive: already sent
			}
			*next = idx + 1
			pos := &position{next: idx + 1}
			if m.exclude[ev.Type] {
				m.Stats.EventsExcluded.Add(1)
				if skipped++; skipped%skipCommitEvery == 0 {
					pub.Advance(pos)
				}
				continue
			}
			out := m.mapper.Map(ev, time.Now())
			out.Meta["_id"] = fmt.Sprintf("%s/%d", sid, idx)
			m.Stats.EventsPublished.Add(1)
			pub.PublishOne(out, pos)
		}
	}
}
