package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// measurement is what one run of a beat measured.
type measurement struct {
	wall     time.Duration // from start until every event was acknowledged
	firstAck time.Duration // from start until the first event was acknowledged
	cpu      time.Duration // user + system CPU of the beat's process until then
	peerCPU  time.Duration // CPU of this process meanwhile: the Teleport double and mock-es
	peakRSS  int64         // bytes (VmHWM)
	// peakAnon is the most anonymous memory (RssAnon: the heap, stacks)
	// seen at the reads of /stats. RSS also counts the pages of the
	// binary mapped from the page cache, which vary from run to run with
	// what the cache holds (Filebeat's peak RSS ranged 86-122 MiB on one
	// day); the anonymous part is what the beat itself allocates.
	peakAnon int64
	acked    int64
	failed   int64
	dropped  int64
}

func (m measurement) eventsPerSecond() float64 {
	return float64(m.acked) / m.wall.Seconds()
}

func (m measurement) cpuPerMillion() float64 {
	return m.cpu.Seconds() / float64(m.acked) * 1e6
}

func (m measurement) peerCPUPerMillion() float64 {
	return m.peerCPU.Seconds() / float64(m.acked) * 1e6
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pollEvery is how often a run reads the beat's /stats: each read costs the
// beat a walk of its whole metrics registry (with /proc reads), about a
// millisecond of CPU, so that polling every 20 ms charged ~7% of the beat's
// CPU to the measurement. Far from the end a read every 250 ms is enough;
// near it (the last 5%, or the last half second at the rate so far), every
// 10 ms, so that the end is still seen within 10 ms.
func pollEvery(acked, n int64, elapsed time.Duration) time.Duration {
	if acked <= 0 || elapsed <= 0 {
		return 100 * time.Millisecond
	}
	left := time.Duration(float64(n-acked) / float64(acked) * float64(elapsed))
	if acked >= n-n/20 || left < 500*time.Millisecond {
		return 10 * time.Millisecond
	}
	return 250 * time.Millisecond
}

// beatRun is one run of a beat binary with a config until n events are
// acknowledged according to its own /stats endpoint.
type beatRun struct {
	bin     string
	dir     string   // the run's home: config, data, logs
	config  string   // the config file's content
	set     []string // settings given with -E (key=value)
	flags   []string // more command line flags
	n       int64
	timeout time.Duration
	heapAt  int64 // take a heap profile once this many events are acknowledged (0: none)
}

// fetchHeap saves the heap profile libbeat's http endpoint serves.
func fetchHeap(url, path string) error {
	resp, err := statsClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s (is http.pprof.enabled set?)", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (r beatRun) run(ctx context.Context) (measurement, error) {
	var m measurement
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return m, err
	}
	port, err := freePort()
	if err != nil {
		return m, err
	}
	cfgPath := filepath.Join(r.dir, "beat.yml")
	if err := os.WriteFile(cfgPath, []byte(r.config), 0o600); err != nil {
		return m, err
	}
	args := []string{"run", "-e", "-c", cfgPath, "--strict.perms=false"}
	set := append(slices.Clone(r.set), "http.enabled=true", "http.host=127.0.0.1", fmt.Sprintf("http.port=%d", port),
		"path.home="+r.dir, "logging.level=info", "logging.metrics.enabled=false")
	for _, kv := range set {
		args = append(args, "-E", kv)
	}
	args = append(args, r.flags...)
	proc, logf, err := r.start(args)
	if err != nil {
		return m, err
	}
	defer logf.Close()
	defer proc.stop()
	start := proc.started
	peerStart := selfCPU()

	url := fmt.Sprintf("http://127.0.0.1:%d/stats", port)
	heapTaken := false
	deadline := time.After(r.timeout)
	tick := time.NewTimer(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return m, context.Cause(ctx)
		case err := <-proc.exitedCh:
			proc.running = false
			return m, fmt.Errorf("%s exited early (%v); see %s", filepath.Base(r.bin), err, logf.Name())
		case <-deadline:
			return m, fmt.Errorf("%s: not every event acknowledged after %s (%d of %d); see %s", filepath.Base(r.bin), r.timeout, m.acked, r.n, logf.Name())
		case <-tick.C:
		}
		st, err := stats(url)
		if err != nil {
			tick.Reset(20 * time.Millisecond)
			continue // not listening yet
		}
		m.acked, m.failed, m.dropped = st.acked, st.failed, st.dropped
		if a, err := statusBytes(proc.pid(), "RssAnon"); err == nil && a > m.peakAnon {
			m.peakAnon = a
		}
		if r.heapAt > 0 && !heapTaken && m.acked >= r.heapAt {
			// A heap profile in the middle of the run (libbeat's
			// http.pprof), where the exit profile shows only what is left.
			heapTaken = true
			if err := fetchHeap(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", port), filepath.Join(r.dir, "heap-mid.prof")); err != nil {
				return m, err
			}
		}
		tick.Reset(pollEvery(m.acked, r.n, time.Since(start)))
		if m.firstAck == 0 && m.acked > 0 {
			m.firstAck = time.Since(start)
		}
		if m.acked < r.n {
			continue
		}
		m.wall = time.Since(start)
		m.peerCPU = selfCPU() - peerStart
		if m.cpu, err = processCPU(proc.pid()); err != nil {
			return m, err
		}
		if m.peakRSS, err = peakRSS(proc.pid()); err != nil {
			return m, err
		}
		proc.stop()
		return m, nil
	}
}

// process is a running beat.
type process struct {
	cmd      *exec.Cmd
	started  time.Time
	exitedCh chan error
	running  bool
}

// start runs the beat binary with args in the run's directory, its output
// in beat.log there.
func (r beatRun) start(args []string) (*process, *os.File, error) {
	logf, err := os.Create(filepath.Join(r.dir, "beat.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	p := &process{cmd: cmd, started: time.Now(), exitedCh: make(chan error, 1), running: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", r.bin, err)
	}
	go func() { p.exitedCh <- cmd.Wait() }()
	return p, logf, nil
}

// stop ends the beat as a service manager would: SIGTERM, then SIGKILL if
// it is still running 30 s later.
func (p *process) stop() {
	if !p.running {
		return
	}
	p.running = false
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exitedCh:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exitedCh
	}
}

// exited reports whether the beat has exited by itself.
func (p *process) exited() bool {
	select {
	case err := <-p.exitedCh:
		p.exitedCh <- err
		return true
	default:
		return false
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

type outputStats struct{ acked, failed, dropped int64 }

var statsClient = &http.Client{Timeout: 2 * time.Second}

// stats reads libbeat.output.events from a beat's /stats endpoint.
func stats(url string) (outputStats, error) {
	resp, err := statsClient.Get(url)
	if err != nil {
		return outputStats{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return outputStats{}, err
	}
	var doc struct {
		Libbeat struct {
			Output struct {
				Events struct {
					Acked   int64 `json:"acked"`
					Failed  int64 `json:"failed"`
					Dropped int64 `json:"dropped"`
				} `json:"events"`
			} `json:"output"`
		} `json:"libbeat"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return outputStats{}, fmt.Errorf("decode %s: %w", url, err)
	}
	e := doc.Libbeat.Output.Events
	return outputStats{e.Acked, e.Failed, e.Dropped}, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// processCPU is the user + system CPU time the process used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the beat's CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/<pid>/stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/<pid>/stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/<pid>/stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// peakRSS is the process's peak resident set size (VmHWM).
func peakRSS(pid int) (int64, error) { return statusBytes(pid, "VmHWM") }

// statusBytes is a memory figure of /proc/<pid>/status, in bytes.
func statusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the beat's memory use: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %q: %w", field, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/<pid>/status", field)
}
