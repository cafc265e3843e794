package audit

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// harness runs a Reader against the Teleport test double, through
// teleportbeat's client (package teleport) over gRPC and mutual TLS.
type harness struct {
	t    *testing.T
	srv  *teleporttest.Server
	conn *teleport.Conn

	mu  sync.Mutex
	now time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, teleporttest.Config{})
}

func newHarnessWith(t *testing.T, tc teleporttest.Config) *harness {
	t.Helper()
	return newHarnessLogged(t, tc, logptest.NewTestingLogger(t, ""))
}

// newHarnessLogged is newHarnessWith with the client logging to log.
func newHarnessLogged(t *testing.T, tc teleporttest.Config, log *logp.Logger) *harness {
	t.Helper()
	srv, idPath := teleporttest.StartWithIdentity(t, t.TempDir(), tc)
	cfg := config.Default().Teleport
	cfg.Addr = []string{srv.Addr()}
	cfg.IdentityFile = idPath
	cfg.Backoff = config.Backoff{Init: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	cfg.DialTimeout = 5 * time.Second
	creds, err := teleport.NewCredentials(cfg)
	require.NoError(t, err)
	conn := teleport.NewConn(cfg, creds, log)
	t.Cleanup(conn.Close)
	return &harness{t: t, srv: srv, conn: conn, now: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) setNow(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = t
}

func (h *harness) config() Config {
	return Config{
		BatchSize:    100,
		PollInterval: 10 * time.Millisecond,
		Window:       24 * time.Hour,
		SafetyMargin: 10 * time.Second,
		BackoffInit:  10 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		Now:          h.clock,
	}
}

// run starts a reader from pos and returns a function that collects
// batches until want events were read, then stops the reader.
func (h *harness) run(cfg Config, pos cursor.Position) (*Reader, func(want int) []Batch) {
	r := h.reader(cfg)
	_, collect := h.runReader(r, pos)
	return r, collect
}

// reader is an Reader of the double.
func (h *harness) reader(cfg Config) *Reader {
	return NewReader(cfg, func(ctx context.Context) (Searcher, error) { return h.conn.AuditLog(ctx) }, logptest.NewTestingLogger(h.t, ""))
}

// runReader runs r from pos and returns its batches, and a function that
// collects them as run's does.
func (h *harness) runReader(r *Reader, pos cursor.Position) (<-chan Batch, func(want int) []Batch) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Batch, 2)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.Run(ctx, pos, out)
	}()
	h.t.Cleanup(func() { cancel(); <-stopped })
	return out, func(want int) []Batch {
		var got []Batch
		n := 0
		deadline := time.After(20 * time.Second)
		for n < want {
			select {
			case b := <-out:
				got = append(got, b)
				n += len(b.Events)
			case <-deadline:
				h.t.Fatalf("read %d events, want %d", n, want)
			}
		}
		return got
	}
}

func ids(bs []Batch) []string {
	var out []string
	for _, b := range bs {
		for _, e := range b.Events {
			out = append(out, e.Key())
		}
	}
	return out
}

func storedIDs(s *teleporttest.Store) []string {
	var out []string
	for _, e := range s.All() {
		out = append(out, event.IDOf(e.Proto()))
	}
	return out
}

func TestReaderReadsEveryEventOnceAcrossPagesAndWindows(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 28, 22, 0, 0, 0, time.UTC)
	// 3,000 events over about three days: several windows, many pages.
	h.srv.Store.Add(teleporttest.NewGenerator(1).Events(3000, start, 87*time.Second)...)
	_, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	got := collect(3000)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))

	// Every event's position names the page it came from and the events of
	// that page done so far, ending with itself.
	for _, b := range got {
		for i, e := range b.Events {
			p := b.Positions[i]
			require.Equal(t, e.Key(), p.Done[len(p.Done)-1])
			require.Equal(t, e.Time, p.LastEventTime)
		}
	}
}

func TestReaderResumesInsideAPage(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(2).Events(250, start, time.Second)...)
	_, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	first := collect(250)
	// Resume from the position after the 150th event: page 2, half done.
	var positions []*cursor.Position
	for _, b := range first {
		positions = append(positions, b.Positions...)
	}
	resume := positions[149]
	require.NotEmpty(t, resume.StartKey)
	require.Len(t, resume.Done, 50)

	h2 := &harness{t: t, srv: h.srv, conn: h.conn, now: h.now}
	_, collect2 := h2.run(h2.config(), *resume)
	rest := collect2(100)
	require.Equal(t, storedIDs(h.srv.Store)[150:], ids(rest), "exactly the events after the position")
}

func TestReaderPicksUpLateEventsInsideTheOpenPage(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 23, 0, 0, 0, time.UTC)
	g := teleporttest.NewGenerator(3)
	h.srv.Store.Add(g.Events(40, start, time.Second)...)
	_, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	require.Len(t, ids(collect(40)), 40)

	// An event lands late, with a time in the middle of what was read, and
	// a newer one arrives too.
	late := g.Events(1, start.Add(20500*time.Millisecond), 0)
	newer := g.Events(1, start.Add(time.Minute), 0)
	h.srv.Store.Add(late...)
	h.srv.Store.Add(newer...)
	got := ids(collect(2))
	require.ElementsMatch(t, []string{event.IDOf(late[0].Proto()), event.IDOf(newer[0].Proto())}, got)
}

func TestReaderFiltersAndKeepsTheSafetyMargin(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 23, 59, 0, 0, time.UTC)
	evs := teleporttest.NewGenerator(4).Events(200, start, 500*time.Millisecond)
	h.srv.Store.Add(evs...)
	h.setNow(start.Add(60 * time.Second)) // with the 10 s margin, only events up to start+50s are readable
	cfg := h.config()
	cfg.ExcludeEventTypes = []string{"kube.request"}
	r, collect := h.run(cfg, cursor.Position{WindowStart: start})

	var want []string
	for _, e := range evs {
		if e.Time.After(start.Add(50*time.Second)) || e.Type == "kube.request" {
			continue
		}
		want = append(want, event.IDOf(e.Proto()))
	}
	got := collect(len(want))
	require.Equal(t, want, ids(got))
	require.Eventually(t, r.CaughtUp, 5*time.Second, 10*time.Millisecond)
	require.Positive(t, r.Stats.Excluded.Load())

	// Time passes: the rest becomes readable.
	var rest []string
	for _, e := range evs {
		if e.Time.After(start.Add(50*time.Second)) && e.Type != "kube.request" {
			rest = append(rest, event.IDOf(e.Proto()))
		}
	}
	h.setNow(start.Add(time.Hour))
	require.Equal(t, rest, ids(collect(len(rest))))
}

func TestReaderServerSideTypeFilter(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)
	evs := teleporttest.NewGenerator(5).Events(300, start, time.Second)
	h.srv.Store.Add(evs...)
	cfg := h.config()
	cfg.EventTypes = []string{"user.login", "session.start"}
	var want []string
	for _, e := range evs {
		if e.Type == "user.login" || e.Type == "session.start" {
			want = append(want, event.IDOf(e.Proto()))
		}
	}
	_, collect := h.run(cfg, cursor.Position{WindowStart: start})
	require.Equal(t, want, ids(collect(len(want))))
}

func TestReaderRetriesUntilTeleportAnswers(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(6).Events(500, start, time.Second)...)
	h.srv.Faults.FailEvery(3)
	h.srv.Faults.CutEvery(5)
	r, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	got := collect(500)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))
	require.Positive(t, r.Stats.SearchErrors.Load())
}

func TestReaderKeepsDistinctEventsThatShareAUid(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)
	mk := func(sec int, code string) *teleporttest.Event {
		e, err := teleporttest.NewEvent(map[string]any{
			"event": "db.session.query", "code": code, "uid": "shared-uid",
			"time": start.Add(time.Duration(sec) * time.Second).Format(time.RFC3339Nano),
		})
		require.NoError(t, err)
		return e
	}
	a, b, c := mk(1, "TDB02I"), mk(2, "TDB02W"), mk(2, "TDB02E")
	h.srv.Store.Add(a, b, c)
	_, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	got := collect(3)
	require.Len(t, ids(got), 3, "three distinct events, one uid")
	var positions []*cursor.Position
	for _, bt := range got {
		positions = append(positions, bt.Positions...)
	}
	require.Len(t, positions[2].Done, 3)

	// Resuming after the first one sends exactly the other two.
	h2 := &harness{t: t, srv: h.srv, conn: h.conn, now: h.now}
	_, collect2 := h2.run(h2.config(), *positions[0])
	rest := collect2(2)
	var codes []string
	for _, bt := range rest {
		for _, e := range bt.Events {
			codes = append(codes, e.String("code"))
		}
	}
	require.Equal(t, []string{"TDB02W", "TDB02E"}, codes)
}

// TestReaderDoesNotResendEventsWithoutUid: newer Auth Services give an
// event without a uid a random API id on every read; re-reading the open
// page must still recognise it.
func TestReaderDoesNotResendEventsWithoutUid(t *testing.T) {
	h := newHarnessWith(t, teleporttest.Config{RandomIDs: true})
	start := time.Date(2025, 5, 31, 23, 0, 0, 0, time.UTC)
	var evs []*teleporttest.Event
	for i := 0; i < 5; i++ {
		e, err := teleporttest.NewEvent(map[string]any{"event": "session.data", "code": "T2006I", "time": start.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "tx": i})
		require.NoError(t, err)
		evs = append(evs, e)
	}
	h.srv.Store.Add(evs...)
	r, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	require.Len(t, ids(collect(5)), 5)
	calls := h.srv.SearchCalls()
	require.Eventually(t, func() bool { return h.srv.SearchCalls() > calls+5 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, int64(5), r.Stats.Events.Load(), "re-reads of the open page sent nothing again")
}

// TestReaderReadsPastWindowsConcurrentlyInOrder: a backfill over several
// days reads windows at once but hands events over in log order, each once.
func TestReaderReadsPastWindowsConcurrentlyInOrder(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 25, 7, 0, 0, 0, time.UTC)
	// Events every 5 minutes for a week, some exactly on midnights.
	h.srv.Store.Add(teleporttest.NewGenerator(7).Events(7*288, start, 5*time.Minute)...)
	h.srv.Faults.SetSearchLatency(20 * time.Millisecond)
	h.setNow(start.Add(8 * 24 * time.Hour))
	cfg := h.config()
	cfg.BackfillConcurrency = 4
	cfg.Prefetch = 2
	_, collect := h.run(cfg, cursor.Position{WindowStart: start})
	got := collect(7 * 288)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))
	require.GreaterOrEqual(t, h.srv.MaxConcurrentSearches(), int64(3), "windows are read at once")
	var last time.Time
	for _, b := range got {
		for _, p := range b.Positions {
			require.False(t, p.WindowStart.Before(last), "positions move forward")
			last = p.WindowStart
		}
	}
}

// TestARefusedStartKeyIsReadAgainWithoutIt: the audit log behind a saved
// start key changed (a backend restored or migrated): Teleport refuses the
// key. The reader does not retry it forever; it reads on without it from
// the last event read, sends every event, each once, and counts it.
func TestARefusedStartKeyIsReadAgainWithoutIt(t *testing.T) {
	h := newHarness(t)
	now := h.clock()
	evs := teleporttest.NewGenerator(41).Events(300, now.Add(-30*time.Minute), time.Second)
	h.srv.Store.Add(evs...)
	cfg := h.config()
	r, collect := h.run(cfg, cursor.Position{WindowStart: now.Add(-time.Hour)})
	got := collect(100) // the first page, whose start key comes next
	h.srv.Store.Restore()
	got = append(got, collect(200)...)
	require.Equal(t, storedIDs(h.srv.Store), ids(got), "every event once, in order")
	require.EqualValues(t, 1, r.Stats.KeysRefused.Load())
}

// The same error, again and again, for a search with a start key is not
// retried forever either: after keyRetries answers the key is given up.
func TestAStartKeyAnsweredWithOneErrorAgainAndAgainIsGivenUp(t *testing.T) {
	h := newHarness(t)
	now := h.clock()
	evs := teleporttest.NewGenerator(42).Events(300, now.Add(-30*time.Minute), time.Second)
	h.srv.Store.Add(evs...)
	// Every search that resumes from a key fails, keyRetries times: the
	// first page (no key) is read, the second's key is given up.
	h.srv.Faults.FailKeyedWith(keyRetries, codes.Internal)
	r, collect := h.run(h.config(), cursor.Position{WindowStart: now.Add(-time.Hour)})
	got := collect(300)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))
	require.EqualValues(t, 1, r.Stats.KeysRefused.Load())
}

// Polling follows the traffic: a read of the log's end that found events
// is followed PollIntervalMin later; each that found none doubles the
// wait up to PollInterval (a quiet cluster is searched no more often than
// before).
func TestNextWaitFollowsTheTraffic(t *testing.T) {
	r := &Reader{cfg: Config{PollIntervalMin: 500 * time.Millisecond, PollInterval: 5 * time.Second}}
	ms := time.Millisecond
	never := time.Duration(math.MaxInt64)
	w := time.Duration(0)
	var seq []time.Duration
	// A cluster quiet since the start: up to poll_interval.
	for range 6 {
		w = r.nextWait(w, false, never)
		seq = append(seq, w)
	}
	require.Equal(t, []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 5000 * ms, 5000 * ms}, seq)
	// Events found: the minimum; quiet since, within recentActivity: up
	// to recentPollCap (Athena's batches, a minute apart, are read within
	// 2 s); quiet longer: up to poll_interval again.
	seq = seq[:0]
	w = r.nextWait(w, true, 0)
	seq = append(seq, w)
	for _, quiet := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, time.Minute, 4 * time.Minute, 5 * time.Minute, 6 * time.Minute} {
		w = r.nextWait(w, false, quiet)
		seq = append(seq, w)
	}
	require.Equal(t, []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 4000 * ms, 5000 * ms}, seq)
	r.cfg.PollIntervalMin = 0
	require.Equal(t, 5*time.Second, r.nextWait(500*ms, true, 0), "without a minimum, poll_interval always")
	r.cfg.PollIntervalMin, r.cfg.PollInterval = 500*ms, 200*ms
	require.Equal(t, 200*ms, r.nextWait(0, true, 0), "a poll_interval below the minimum: poll_interval always")
	r.cfg.PollIntervalMin, r.cfg.PollInterval = 100*ms, time.Second
	require.Equal(t, time.Second, r.nextWait(time.Second, false, 0), "a poll_interval below recentPollCap bounds it")
}

// The reader waits as nextWait says: on a quiet log the waits grow to
// PollInterval, and the first read that finds a new event shortens them
// again.
func TestTheReaderPollsFasterWhileEventsCome(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 5, 31, 23, 0, 0, 0, time.UTC)
	h.setNow(start.Add(time.Hour))
	h.srv.Store.Add(teleporttest.NewGenerator(7).Events(10, start, time.Second)...)
	cfg := h.config()
	cfg.PollIntervalMin, cfg.PollInterval = 5*time.Millisecond, 40*time.Millisecond
	waits := make(chan time.Duration, 1000)
	cfg.onWait = func(d time.Duration) { waits <- d }
	out, collect := h.runReader(h.reader(cfg), cursor.Position{WindowStart: start})
	_ = out
	collect(10)
	next := func() time.Duration {
		select {
		case d := <-waits:
			return d
		case <-time.After(20 * time.Second):
			t.Fatal("no wait")
			return 0
		}
	}
	// Quiet: the waits reach the maximum.
	for next() != 40*time.Millisecond {
	}
	// A new event: read, and the next wait is the minimum.
	h.srv.Store.Add(teleporttest.NewGenerator(8).Events(1, start.Add(30*time.Minute), time.Second)...)
	collect(1)
	for d := next(); d != 5*time.Millisecond; d = next() {
		require.Equal(t, 40*time.Millisecond, d, "quiet until the event is read")
	}
}
