package teleporttest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Faults injects the failures a real cluster shows: slow pages, errors on
// some calls, connections cut in the middle of a response. The zero value
// injects nothing; every setter takes effect on the next call.
type Faults struct {
	mu sync.Mutex

	searchLatency time.Duration // added to every audit search
	failEvery     int           // every Nth search fails with Unavailable
	failNext      int           // the next N searches fail
	failKeyed     int           // the next N searches with a start key fail
	failCode      codes.Code    // the code failed searches answer (Unavailable when unset)
	cutEvery      int           // every Nth search loses its connection mid-response
	slowNext      int           // the next N searches take slowFor longer
	slowFor       time.Duration
	searches      int

	sessionLatency  time.Duration // added to every session stream
	sessionFailNext int           // the next N session streams fail
	sessionCutAfter int           // session streams lose their connection after N events

	exportLatency  time.Duration // added before every export chunk stream
	exportGate     *Gate         // when set, each export stream waits for a token
	exportFailNext int           // the next N export streams fail
	exportCutAfter int           // export streams lose their connection after N events

	lockGate *Gate // when set, each lock upsert waits for a token
}

// GateLocks makes every lock creation wait until Release lets it go: a
// Teleport whose lock API is slow, for as long as a test wants.
func (f *Faults) GateLocks() *Gate {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &Gate{tokens: make(chan struct{}, 1<<16)}
	f.lockGate = g
	return g
}

func (f *Faults) lockWait() *Gate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lockGate
}

// CutExportsAfter makes every export chunk stream fail after n events, as a
// lost connection does (0: never).
func (f *Faults) CutExportsAfter(n int) { f.locked(func() { f.exportCutAfter = n }) }

// SetExportLatency adds d before every export chunk stream starts (Athena
// reads a Parquet file from S3 first).
func (f *Faults) SetExportLatency(d time.Duration) { f.locked(func() { f.exportLatency = d }) }

// GateExports makes every export chunk stream wait, before it sends
// anything, until Release lets it go: a test decides when Teleport answers.
func (f *Faults) GateExports() *Gate {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &Gate{tokens: make(chan struct{}, 1<<16)}
	f.exportGate = g
	return g
}

// Gate holds export streams (or lock creations) until released.
type Gate struct {
	tokens  chan struct{}
	waiting atomic.Int64
}

// Release lets n streams go.
func (g *Gate) Release(n int) {
	for range n {
		g.tokens <- struct{}{}
	}
}

// Waiting is the number of streams held now.
func (g *Gate) Waiting() int64 { return g.waiting.Load() }

// wait holds a stream until it is released or ctx is done.
func (g *Gate) wait(ctx context.Context) error {
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-g.tokens:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FailNextExports makes the next n export chunk streams fail.
func (f *Faults) FailNextExports(n int) { f.locked(func() { f.exportFailNext = n }) }

func (f *Faults) planExport() searchPlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := searchPlan{delay: f.exportLatency, cutAfter: f.exportCutAfter, gate: f.exportGate}
	if f.exportFailNext > 0 {
		f.exportFailNext--
		p.fail = true
	}
	return p
}

// SetSearchLatency adds d to every audit search, like a remote Auth
// Service or a slow backend (Athena queries take seconds).
func (f *Faults) SetSearchLatency(d time.Duration) { f.locked(func() { f.searchLatency = d }) }

// FailEvery makes every nth search fail with Unavailable (0 turns it off).
func (f *Faults) FailEvery(n int) { f.locked(func() { f.failEvery = n }) }

// FailNext makes the next n searches fail with Unavailable.
func (f *Faults) FailNext(n int) {
	f.FailNextWith(n, codes.Unavailable)
}

// FailNextWith makes the next n searches fail with the gRPC code, as a
// cluster refusing them does (PermissionDenied for a role without access,
// ResourceExhausted for rate limiting, Internal for a backend error).
func (f *Faults) FailNextWith(n int, code codes.Code) {
	f.locked(func() { f.failNext, f.failCode = n, code })
}

// FailKeyedWith makes the next n searches that carry a start key fail
// with the gRPC code (a backend that cannot resume from a key).
func (f *Faults) FailKeyedWith(n int, code codes.Code) {
	f.locked(func() { f.failKeyed, f.failCode = n, code })
}

// CutEvery makes every nth search lose its connection after the page was
// read from the backend but before the response arrived (0 turns it off).
func (f *Faults) CutEvery(n int) { f.locked(func() { f.cutEvery = n }) }

// SlowNext makes the next n searches take d longer.
func (f *Faults) SlowNext(n int, d time.Duration) { f.locked(func() { f.slowNext, f.slowFor = n, d }) }

// SetSessionLatency adds d before every session stream starts.
func (f *Faults) SetSessionLatency(d time.Duration) { f.locked(func() { f.sessionLatency = d }) }

// FailNextSessions makes the next n session streams fail with Unavailable.
func (f *Faults) FailNextSessions(n int) { f.locked(func() { f.sessionFailNext = n }) }

// CutSessionsAfter makes session streams lose their connection after n
// events (0 turns it off).
func (f *Faults) CutSessionsAfter(n int) { f.locked(func() { f.sessionCutAfter = n }) }

type sessionPlan struct {
	delay    time.Duration
	fail     bool
	cutAfter int
}

func (f *Faults) planSession() sessionPlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := sessionPlan{delay: f.sessionLatency, cutAfter: f.sessionCutAfter}
	if f.sessionFailNext > 0 {
		f.sessionFailNext--
		p.fail = true
	}
	return p
}

// Reset removes every injected fault.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searchLatency, f.failEvery, f.failNext, f.cutEvery, f.slowNext, f.slowFor, f.failKeyed = 0, 0, 0, 0, 0, 0, 0
	f.failCode = codes.OK
	f.sessionLatency, f.sessionFailNext, f.sessionCutAfter = 0, 0, 0
	f.exportLatency, f.exportFailNext, f.exportCutAfter, f.exportGate = 0, 0, 0, nil
	f.lockGate = nil
}

type searchPlan struct {
	delay time.Duration
	fail  bool
	code  codes.Code // of a failure (Unavailable when unset)
	cut   bool

	cutAfter int   // export streams: fail after this many events
	gate     *Gate // export streams: wait for a token first
}

func (f *Faults) planSearch(keyed bool) searchPlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches++
	p := searchPlan{delay: f.searchLatency}
	if f.slowNext > 0 {
		f.slowNext--
		p.delay += f.slowFor
	}
	switch {
	case f.failNext > 0:
		f.failNext--
		p.fail, p.code = true, f.failCode
	case keyed && f.failKeyed > 0:
		f.failKeyed--
		p.fail, p.code = true, f.failCode
	case f.failEvery > 0 && f.searches%f.failEvery == 0:
		p.fail = true
	case f.cutEvery > 0 && f.searches%f.cutEvery == 0:
		p.cut = true
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errInjected = status.Error(codes.Unavailable, "teleporttest: injected failure: auth service unavailable")

// err is the error of a failed plan.
func (p searchPlan) err() error {
	if p.code == codes.OK || p.code == codes.Unavailable {
		return errInjected
	}
	return status.Errorf(p.code, "teleporttest: injected failure (%s)", p.code)
}

// locked runs set with the faults locked.
func (f *Faults) locked(set func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	set()
}
