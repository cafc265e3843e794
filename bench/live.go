package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// The live phase measures what a cluster in use sees: how soon an event
// is in Elasticsearch after it became searchable in Teleport and after it
// happened (freshness), how often Teleport is searched, and what the
// late-event sweeps cost. A fresh Teleport double produces events as they
// happen (Server.Live) at each rate, behaving as one of Teleport's audit
// backends:
//
//   - file: an event is searchable at once (the file and DynamoDB
//     backends, within their indexing delay);
//   - athena: events become searchable in batches, when the oldest has
//     waited a minute or 20,000 wait (Teleport's Athena backend:
//     batchMaxInterval, batchMaxItems).
//
// Besides, late events become searchable 5 to 40 s after their time (the
// ones the sweeps are for): one in 200, and at least 5 a second (at 20
// events/s they are a fifth of what is served). teleportbeat runs with the shipped
// teleportbeat.yml and its default start, into the recording
// Elasticsearch (internal/testkit/estest), which notes when each document
// arrives. Latencies are over the punctual events; the late ones are
// reported apart. The sweeps' cost is steady only once the oldest sweep
// (max_delay, 15 min by default) has swept a while: so the live run sweeps
// at 5 s and 1 min (the least max_delay allowed) instead of 1 min and 15
// min, which reads the same events the same number of times, sooner.
//
// The idle phase runs the beat against a quiet cluster (no new events)
// and counts the searches and CPU it costs per hour.

// Backends the live phase can imitate, given the Athena batch interval.
var backends = map[string]func(*teleporttest.Store, time.Duration){
	"file":   func(*teleporttest.Store, time.Duration) {},
	"athena": func(s *teleporttest.Store, every time.Duration) { s.SetBatching(every, 20000) },
}

// liveResult is one live run.
type liveResult struct {
	backend              string
	rate                 int
	duration             time.Duration
	events, late         int
	stored               int
	fresh                quantiles // searchable in Teleport -> stored
	age                  quantiles // the event's time -> stored
	lateMax              time.Duration
	sweepReads, caught   int64
	searches             int64 // searches Teleport answered (reader and sweeps)
	cpu                  time.Duration
	batches              int // athena: batches released
	searchesPerMinute    float64
	cpuSecondsPerMillion float64
}

// quantiles of a latency distribution.
type quantiles struct{ p50, p90, p99, max time.Duration }

func quantilesOf(lat []time.Duration) quantiles {
	if len(lat) == 0 {
		return quantiles{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return quantiles{q(0.50), q(0.90), q(0.99), lat[len(lat)-1]}
}

func (r liveResult) readsPerEvent() float64 {
	return float64(r.sweepReads) / float64(max(1, r.stored))
}

// liveBench runs the live phase for each backend at each rate.
func liveBench(ctx context.Context, o options, log io.Writer) ([]liveResult, error) {
	var out []liveResult
	for _, backend := range o.liveBackends {
		for _, rate := range o.liveRates {
			res, err := liveRun(ctx, o, backend, rate)
			if err != nil {
				return nil, fmt.Errorf("live run (%s backend) at %d events/s: %w", backend, rate, err)
			}
			fmt.Fprintf(log, "    live %-6s %5d events/s for %s: searchable->stored p50 %s p99 %s; time->stored p50 %s p99 %s; %.1f searches/min; %d late caught (latest %s after its time)\n",
				backend, rate, res.duration, res.fresh.p50.Round(10*time.Millisecond), res.fresh.p99.Round(10*time.Millisecond),
				res.age.p50.Round(10*time.Millisecond), res.age.p99.Round(10*time.Millisecond), res.searchesPerMinute, res.caught, res.lateMax.Round(time.Second))
			out = append(out, res)
		}
	}
	return out, nil
}

// liveEnv is a double, the recording Elasticsearch and a running beat.
type liveEnv struct {
	srv   *teleporttest.Server
	es    *estest.Recorder
	proc  *process
	logf  *os.File
	stats string // the beat's /stats URL
	close func()
}

// startLive starts a double (prepared by prepare), the recording
// Elasticsearch and the beat with the shipped config plus extra settings.
func startLive(o options, dir string, prepare func(*teleporttest.Server), extra ...string) (*liveEnv, error) {
	srv, err := teleporttest.New(teleporttest.Config{})
	if err != nil {
		return nil, err
	}
	prepare(srv)
	env := &liveEnv{srv: srv, es: estest.New()}
	// Arrival times only: the stand-in's mappings and stored sources would
	// take the cores the beat runs on at 2,000 events/s (the tests check
	// what Elasticsearch would refuse).
	env.es.SetRecordOnly()
	esSrv := httptest.NewServer(env.es)
	env.close = func() { esSrv.Close(); srv.Stop() }
	fail := func(err error) (*liveEnv, error) { env.close(); return nil, err }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	id, err := srv.NewIdentity(24 * time.Hour)
	if err != nil {
		return fail(err)
	}
	idFile := filepath.Join(dir, "identity")
	if err := id.WriteIdentityFile(idFile); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	env.stats = fmt.Sprintf("http://127.0.0.1:%d/stats", port)
	cfgPath := filepath.Join(dir, "beat.yml")
	if err := os.WriteFile(cfgPath, []byte(o.shippedConfig), 0o600); err != nil {
		return fail(err)
	}
	args := []string{"run", "-e", "-c", cfgPath, "--strict.perms=false"}
	settings := append([]string{
		fmt.Sprintf("teleportbeat.teleport.addr=[%s]", srv.Addr()),
		"teleportbeat.teleport.identity_file=" + idFile,
		fmt.Sprintf("output.elasticsearch.hosts=[%s]", esSrv.URL),
		// The beat sets up its template as in production; the recorder
		// only notes arrivals (SetRecordOnly).
		"http.enabled=true", "http.host=127.0.0.1", fmt.Sprintf("http.port=%d", port),
		"path.home=" + dir, "logging.level=info", "logging.metrics.enabled=false",
	}, extra...)
	settings = append(settings, o.set...)
	for _, kv := range settings {
		args = append(args, "-E", kv)
	}
	r := beatRun{bin: o.teleportbeat, dir: dir}
	proc, logf, err := r.start(args)
	if err != nil {
		return fail(err)
	}
	env.proc, env.logf = proc, logf
	stopBeat := env.close
	env.close = func() { proc.stop(); logf.Close(); stopBeat() }
	return env, nil
}

func liveRun(ctx context.Context, o options, backend string, rate int) (liveResult, error) {
	res := liveResult{backend: backend, rate: rate, duration: o.liveDuration}
	dir := filepath.Join(o.work, fmt.Sprintf("live-%s-%d", backend, rate))
	// Athena: max_delay above the batch interval, which adds to the late
	// events' own lateness (up to 40 s).
	maxDelay := time.Minute
	if backend == "athena" {
		maxDelay = max(time.Minute, 2*o.athenaBatch)
	}
	env, err := startLive(o, dir, func(s *teleporttest.Server) { backends[backend](s.Store, o.athenaBatch) },
		"teleportbeat.audit.late_events.sweeps=[5s]", "teleportbeat.audit.late_events.max_delay="+maxDelay.String())
	if err != nil {
		return res, err
	}
	defer env.close()

	live, late, err := produce(ctx, env.srv, rate, o.liveDuration)
	if err != nil {
		return res, err
	}
	all := append(slices.Clone(live), late...)
	if err := env.awaitStored(all, 3*time.Minute); err != nil {
		return res, err
	}
	st, err := auditStats(env.stats)
	if err != nil {
		return res, err
	}
	if res.cpu, err = processCPU(env.proc.pid()); err != nil {
		return res, err
	}
	res.events, res.late, res.stored = len(live), len(late), env.es.Count()
	res.sweepReads, res.caught, res.searches = st.LateRead, st.LateCaught, env.srv.SearchCalls()
	res.batches = env.srv.Store.Batches()
	res.searchesPerMinute = float64(res.searches) / o.liveDuration.Minutes()
	res.cpuSecondsPerMillion = res.cpu.Seconds() / float64(max(1, res.stored)) * 1e6
	res.fresh, res.age, res.lateMax = latencies(env.es, live, late)
	return res, nil
}

// produce makes the double produce events at rate for d, and late events
// besides (rate/200 a second, at least 5) searchable 5 to 40 s after
// their time, and returns them once the late ones are searchable too.
func produce(ctx context.Context, srv *teleporttest.Server, rate int, d time.Duration) (live, late []*teleporttest.Event, err error) {
	stop := srv.Live(teleporttest.NewGenerator(uint64(rate)), rate)
	lateGen := teleporttest.NewGenerator(uint64(rate) + 1)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; time.Duration(i)*200*time.Millisecond < d; i++ {
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		case <-tick.C:
		}
		evs := lateGen.Events(max(1, rate/1000), srv.Now(), time.Millisecond)
		srv.Store.AddAfter(time.Duration(5+i%36)*time.Second, evs...)
		late = append(late, evs...)
	}
	live = stop()
	// The last late event is searchable 40 s after the stream, the last
	// batch a minute after its first event.
	deadline := time.Now().Add(3 * time.Minute)
	for srv.Store.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	return live, late, nil
}

// awaitStored waits until every event is in Elasticsearch.
func (env *liveEnv) awaitStored(all []*teleporttest.Event, timeout time.Duration) error {
	want := map[string]bool{}
	for _, e := range all {
		want[event.IDOf(e.Proto())] = true
	}
	deadline := time.Now().Add(timeout)
	for env.es.Count() < len(want) && time.Now().Before(deadline) {
		if env.proc.exited() {
			return fmt.Errorf("teleportbeat exited early; see %s", env.logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := env.es.Count(); n < len(want) {
		return fmt.Errorf("%d of %d events stored; see %s", n, len(want), env.logf.Name())
	}
	return nil
}

// latencies are the punctual events' delays from searchable and from
// their time to arrival in Elasticsearch, and the latest late event's
// delay from its time.
func latencies(es *estest.Recorder, live, late []*teleporttest.Event) (fresh, age quantiles, lateMax time.Duration) {
	byID := map[string]*teleporttest.Event{}
	for _, e := range live {
		byID[event.IDOf(e.Proto())] = e
	}
	lateIDs := map[string]*teleporttest.Event{}
	for _, e := range late {
		lateIDs[event.IDOf(e.Proto())] = e
	}
	var f, a []time.Duration
	for _, d := range es.Docs() {
		if e := lateIDs[d.ID]; e != nil {
			lateMax = max(lateMax, d.Received.Sub(e.Time))
			continue
		}
		e := byID[d.ID]
		if e == nil {
			continue
		}
		f = append(f, d.Received.Sub(e.Searchable))
		a = append(a, d.Received.Sub(e.Time))
	}
	return quantilesOf(f), quantilesOf(a), lateMax
}

// idleResult is what a beat watching a quiet cluster costs.
type idleResult struct {
	name                     string
	settings                 []string
	duration                 time.Duration
	searchesPerHour, cpuPerH float64
}

// idleVariants are the idle runs: the shipped polling, and polling every
// poll_interval whatever the traffic (what teleportbeat did before polling
// followed the traffic).
var idleVariants = []idleResult{
	{name: "shipped"},
	{name: "fixed poll_interval (5 s)", settings: []string{"teleportbeat.audit.poll_interval_min=5s"}},
}

// idleBench runs each idle variant for d after a settling time: six
// minutes (a minute if d is shorter than five).
func idleBench(ctx context.Context, o options, d time.Duration, log io.Writer) ([]idleResult, error) {
	var out []idleResult
	for i, v := range idleVariants {
		if o.idleShippedOnly && v.name != "shipped" {
			continue
		}
		res, err := idleRun(ctx, o, filepath.Join(o.work, fmt.Sprintf("idle-%d", i)), v, d)
		if err != nil {
			return nil, fmt.Errorf("idle run %q: %w", v.name, err)
		}
		fmt.Fprintf(log, "    idle %-20s %.0f searches/hour, %.2f CPU s/hour (over %s)\n", v.name, res.searchesPerHour, res.cpuPerH, d)
		out = append(out, res)
	}
	return out, nil
}

func idleRun(ctx context.Context, o options, dir string, v idleResult, d time.Duration) (idleResult, error) {
	old := teleporttest.NewGenerator(9).Events(100, time.Now().Add(-10*time.Minute), time.Second)
	env, err := startLive(o, dir, func(s *teleporttest.Server) { s.Store.Add(old...) }, v.settings...)
	if err != nil {
		return v, err
	}
	defer env.close()
	if err := env.awaitStored(old, 2*time.Minute); err != nil {
		return v, err
	}
	// Let the start settle (the clock lag looks, the sweeps' first
	// rounds; and the reader's 2 s cap, which lasts 5 minutes after the
	// last events it found), then count.
	settle := min(time.Minute, d)
	if d >= 5*time.Minute {
		settle = 6 * time.Minute
	}
	if !sleep(ctx, settle) {
		return v, ctx.Err()
	}
	s0, cpu0, err := env.counters()
	if err != nil {
		return v, err
	}
	if !sleep(ctx, d) {
		return v, ctx.Err()
	}
	s1, cpu1, err := env.counters()
	if err != nil {
		return v, err
	}
	v.duration = d
	v.searchesPerHour = float64(s1-s0) / d.Hours()
	v.cpuPerH = (cpu1 - cpu0).Seconds() / d.Hours()
	return v, nil
}

func (env *liveEnv) counters() (int64, time.Duration, error) {
	cpu, err := processCPU(env.proc.pid())
	return env.srv.SearchCalls(), cpu, err
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// auditCounters are teleportbeat's counters under teleportbeat.audit.
type auditCounters struct {
	Pages      int64 `json:"pages"`
	LateRead   int64 `json:"late_events_read"`
	LateCaught int64 `json:"late_events_caught"`
}

func auditStats(url string) (auditCounters, error) {
	resp, err := statsClient.Get(url)
	if err != nil {
		return auditCounters{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return auditCounters{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var doc struct {
		Teleportbeat struct {
			Audit auditCounters `json:"audit"`
		} `json:"teleportbeat"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return auditCounters{}, err
	}
	return doc.Teleportbeat.Audit, nil
}
