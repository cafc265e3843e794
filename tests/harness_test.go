// Package tests holds the end-to-end tests: they build the teleportbeat
// binary and run it against the Teleport test double and the output
// stand-ins (the recording Elasticsearch endpoint, go-lumber for Logstash).
package tests

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// beatBin is the binary under test, built once by TestMain.
var beatBin string

// repoRoot is the repository's root directory.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// `go test -short ./...` is the unit run: these build the binary
		// and run it against the doubles for minutes.
		fmt.Println("end-to-end tests skipped under -short")
		return 0
	}
	// go-lumber logs every connection with the standard logger.
	log.SetOutput(io.Discard)
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "teleportbeat-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	beatBin = filepath.Join(dir, "teleportbeat")
	if prebuilt := os.Getenv("TELEPORTBEAT_BINARY"); prebuilt != "" {
		beatBin = prebuilt
	} else {
		// As releases are built (magefile.go): static, without cgo.
		cmd := exec.Command("go", "build", "-o", beatBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Dir = repoRoot
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building teleportbeat:", err)
			return 1
		}
	}
	return m.Run()
}

// env is one test's world: a Teleport double with credentials, and a
// directory for configs, data and logs.
type env struct {
	t      *testing.T
	dir    string
	tp     *teleporttest.Server
	idFile string
	gen    *teleporttest.Generator
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, teleporttest.Config{})
}

// newEnvWith is newEnv with a Teleport double configured by tc.
func newEnvWith(t *testing.T, tc teleporttest.Config) *env {
	t.Helper()
	tp, err := teleporttest.New(tc)
	require.NoError(t, err)
	t.Cleanup(tp.Stop)
	dir := t.TempDir()
	id, err := tp.NewIdentity(24 * time.Hour)
	require.NoError(t, err)
	idFile := filepath.Join(dir, "identity")
	require.NoError(t, id.WriteIdentityFile(idFile))
	return &env{t: t, dir: dir, tp: tp, idFile: idFile, gen: teleporttest.NewGenerator(uint64(time.Now().UnixNano()))}
}

// addCorpus serves the sample events.
func (e *env) addCorpus() []*teleporttest.Event {
	evs, err := teleporttest.CorpusEvents()
	require.NoError(e.t, err)
	e.tp.Store.Add(evs...)
	return evs
}

// addGenerated serves n generated events ending an hour ago (well behind
// the safety margin).
func (e *env) addGenerated(n int) []*teleporttest.Event {
	evs := e.gen.Events(n, time.Now().Add(-time.Hour-time.Duration(n)*100*time.Millisecond), 100*time.Millisecond)
	e.tp.Store.Add(evs...)
	return evs
}

// config writes a teleportbeat.yml: the Teleport connection, an audit
// section that backfills from 2019 and polls fast, then extra. The
// late-event sweeps run at 2 s and 1 min (the least max_delay) instead of
// 1 min and 15 min: an event a test serves behind the reader (timed in the
// past while the beat runs) is caught within about a minute, whatever
// the page it falls in, so no test depends on where the reader is.
func (e *env) config(name, extra string) string {
	e.t.Helper()
	return e.rawConfig(name, `teleportbeat.audit:
  start_time: "2019-01-01T00:00:00Z"
  poll_interval: 200ms
  safety_margin: 1s
  late_events.sweeps: [2s]
  late_events.max_delay: 1m
`+extra)
}

// rawConfig writes a teleportbeat.yml: the Teleport connection, then body.
func (e *env) rawConfig(name, body string) string {
	e.t.Helper()
	text := fmt.Sprintf(`teleportbeat.teleport:
  addr: [%q]
  identity_file: %q
  backoff.init: 200ms
  backoff.max: 2s
logging.level: info
logging.metrics.enabled: false
%s
`, e.tp.Addr(), e.idFile, body)
	path := filepath.Join(e.dir, name)
	require.NoError(e.t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// proc is a running teleportbeat.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs `teleportbeat run` with the config, data under e.dir/data.
func (e *env) start(cfg string, args ...string) *proc {
	e.t.Helper()
	all := append([]string{"run", "-e", "-c", cfg}, args...)
	return e.launch(all, nil, nil)
}

// launch starts the binary with args, stdin, and onFail to describe more
// than its log when the test fails. path.home, path.data and path.logs
// default to e.dir, e.dir/data and e.dir/logs unless args set them.
func (e *env) launch(args []string, stdin io.Reader, onFail func() string) *proc {
	e.t.Helper()
	all := slices.Clone(args)
	for _, d := range [][2]string{{"--path.home", e.dir}, {"--path.data", filepath.Join(e.dir, "data")}, {"--path.logs", filepath.Join(e.dir, "logs")}} {
		if !slices.Contains(args, d[0]) {
			all = append(all, d[0], d[1])
		}
	}
	cmd := exec.Command(beatBin, all...)
	cmd.Stdin = stdin
	p := &proc{t: e.t, cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	require.NoError(e.t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		p.kill()
		if e.t.Failed() {
			if onFail != nil {
				e.t.Log(onFail())
			}
			e.t.Logf("teleportbeat log (last 8000 bytes):\n%s", tail(p.logs.String(), 8000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("teleportbeat did not stop within 30s of SIGTERM")
	}
	require.NoError(p.t, p.err, "clean exit after SIGTERM")
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the process logged substr.
func (p *proc) waitLog(timeout time.Duration, substr string) {
	p.t.Helper()
	waitFor(p.t, timeout, fmt.Sprintf("log line %q", substr), func() bool {
		return strings.Contains(p.logs.String(), substr)
	})
}

// waitLogCount waits until the process logged substr n times.
func (p *proc) waitLogCount(timeout time.Duration, substr string, n int) {
	p.t.Helper()
	waitFor(p.t, timeout, fmt.Sprintf("log line %q %d times", substr, n), func() bool {
		return strings.Count(p.logs.String(), substr) >= n
	})
}

// expectedIDs are the _id values the served events must end up with: the
// uid, or a hash of the content for an event without one.
func expectedIDs(evs []*teleporttest.Event) map[string][]*teleporttest.Event {
	out := map[string][]*teleporttest.Event{}
	for _, e := range evs {
		id := event.IDOf(e.Proto())
		out[id] = append(out[id], e)
	}
	return out
}
