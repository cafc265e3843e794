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

	"github.com/teleportbeat/teleportbeat/internal/estest"
	"github.com/teleportbeat/teleportbeat/internal/eventid"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

// The live phase measures what a cluster in use sees: how soon an event
// is in Elasticsearch after it happened (latency), and what the late-event
// sweeps cost Teleport (events read by sweeps per event shipped). A fresh
// Teleport double produces events as they happen (Server.Live) at each
// rate; one event in 200 becomes searchable 5 to 40 s after its time (the
// late ones the sweeps are for). teleportbeat runs with the shipped
// teleportbeat.yml and its default start, into the recording Elasticsearch
// (internal/estest), which notes when each document arrives.
//
// Latency is arrival minus the event's time, over the punctual events
// (the late ones are reported apart). The sweeps' cost is steady only
// once the oldest sweep (max_delay, 15 min by default) has swept a while:
// so the live run sweeps at 5 s and 1 min (the least max_delay allowed)
// instead of 1 min and 15 min, which reads the same events the same
// number of times, sooner.

// liveResult is one live run.
type liveResult struct {
	rate                int
	duration            time.Duration
	events, late        int
	stored              int
	p50, p90, p99, pmax time.Duration
	lateMax             time.Duration // the latest late event's arrival after its time
	sweepReads, caught  int64
	searches            int64
	cpu                 time.Duration
}

func (r liveResult) readsPerEvent() float64 {
	return float64(r.sweepReads) / float64(max(1, r.stored))
}

// liveBench runs the live phase at each rate.
func liveBench(ctx context.Context, o options, log io.Writer) ([]liveResult, error) {
	var out []liveResult
	for _, rate := range o.liveRates {
		res, err := liveRun(ctx, o, rate, log)
		if err != nil {
			return nil, fmt.Errorf("live run at %d events/s: %w", rate, err)
		}
		fmt.Fprintf(log, "    live %5d events/s for %s: latency p50 %s p99 %s max %s; %d late caught (latest %s after its time); sweeps read %.2f events per event shipped\n",
			rate, res.duration, res.p50.Round(10*time.Millisecond), res.p99.Round(10*time.Millisecond), res.pmax.Round(10*time.Millisecond), res.caught, res.lateMax.Round(time.Second), res.readsPerEvent())
		out = append(out, res)
	}
	return out, nil
}

func liveRun(ctx context.Context, o options, rate int, log io.Writer) (liveResult, error) {
	res := liveResult{rate: rate, duration: o.liveDuration}
	srv, err := teleporttest.New(teleporttest.Config{})
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	dir := filepath.Join(o.work, fmt.Sprintf("live-%d", rate))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	id, err := srv.NewIdentity(24 * time.Hour)
	if err != nil {
		return res, err
	}
	idFile := filepath.Join(dir, "identity")
	if err := id.WriteIdentityFile(idFile); err != nil {
		return res, err
	}
	es := estest.New()
	esSrv := httptest.NewServer(es)
	defer esSrv.Close()

	stop := srv.Live(teleporttest.NewGenerator(uint64(rate)), rate)
	var late []*teleporttest.Event
	lateGen := teleporttest.NewGenerator(uint64(rate) + 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if time.Duration(i)*200*time.Millisecond >= o.liveDuration {
				return
			}
			// One event in 200 is late by 5 to 40 s.
			n := max(1, rate/1000)
			evs := lateGen.Events(n, srv.Now(), time.Millisecond)
			srv.Store.AddAfter(time.Duration(5+i%36)*time.Second, evs...)
			late = append(late, evs...)
		}
	}()

	port, err := freePort()
	if err != nil {
		return res, err
	}
	cfgPath := filepath.Join(dir, "beat.yml")
	if err := os.WriteFile(cfgPath, []byte(o.shippedConfig), 0o600); err != nil {
		return res, err
	}
	args := []string{"run", "-e", "-c", cfgPath, "--strict.perms=false"}
	for _, kv := range []string{
		fmt.Sprintf("teleportbeat.teleport.addr=[%s]", srv.Addr()),
		"teleportbeat.teleport.identity_file=" + idFile,
		"teleportbeat.audit.late_events.sweeps=[5s]",
		"teleportbeat.audit.late_events.max_delay=1m",
		fmt.Sprintf("output.elasticsearch.hosts=[%s]", esSrv.URL),
		// The template is loaded: the recording Elasticsearch applies it
		// as Elasticsearch does (without it, dynamic mapping refuses some
		// of teleportbeat's documents, as it would).
		"http.enabled=true", "http.host=127.0.0.1", fmt.Sprintf("http.port=%d", port),
		"path.home=" + dir, "logging.level=info", "logging.metrics.enabled=false",
	} {
		args = append(args, "-E", kv)
	}
	r := beatRun{bin: o.teleportbeat, dir: dir}
	proc, logf, err := r.start(args)
	if err != nil {
		return res, err
	}
	defer proc.stop()
	defer logf.Close()

	select {
	case <-done:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	// Wait for the late ones: the last is visible 40 s after the stream.
	deadline := time.Now().Add(2 * time.Minute)
	for srv.Store.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	live := stop()
	all := append(slices.Clone(live), late...)
	want := map[string]bool{}
	for _, e := range all {
		want[eventid.Of(e.Proto())] = true
	}
	for es.Count() < len(want) && time.Now().Before(deadline.Add(time.Minute)) {
		if proc.exited() {
			return res, fmt.Errorf("teleportbeat exited early; see %s", logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/stats", port)
	st, err := auditStats(url)
	if err != nil {
		return res, err
	}
	if res.cpu, err = processCPU(proc.pid()); err != nil {
		return res, err
	}
	res.events, res.late, res.stored = len(live), len(late), es.Count()
	if res.stored < len(want) {
		return res, fmt.Errorf("%d of %d events stored; see %s", res.stored, len(want), logf.Name())
	}
	res.sweepReads, res.caught, res.searches = st.LateRead, st.LateCaught, st.Pages

	lateIDs := map[string]bool{}
	for _, e := range late {
		lateIDs[eventid.Of(e.Proto())] = true
	}
	byID := map[string]*teleporttest.Event{}
	for _, e := range all {
		byID[eventid.Of(e.Proto())] = e
	}
	var lat []time.Duration
	for _, d := range es.Docs() {
		e := byID[d.ID]
		if e == nil {
			continue
		}
		l := d.Received.Sub(e.Time)
		if lateIDs[d.ID] {
			res.lateMax = max(res.lateMax, l)
			continue
		}
		lat = append(lat, l)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	res.p50, res.p90, res.p99, res.pmax = q(0.50), q(0.90), q(0.99), lat[len(lat)-1]
	return res, nil
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
