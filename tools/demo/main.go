// Command demo runs teleportbeat end to end with nothing installed: it
// starts the Teleport test double serving the sample audit events,
// builds teleportbeat, runs it against the double with the file output,
// waits until every event is written, stops it and says where to look.
//
//	go run ./tools/demo
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/build/samples"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dir     = flag.String("dir", envOr("TELEPORTBEAT_DEMO_DIR", "demo-output"), "directory for the demo's config, data, logs and events (emptied first; default $TELEPORTBEAT_DEMO_DIR or demo-output)")
		beat    = flag.String("beat", "", "teleportbeat binary to run (default: build it from this repository)")
		timeout = flag.Duration("timeout", 3*time.Minute, "how long to wait for every event")
		nSess   = flag.Int("sessions", 3, "generated SSH sessions with recordings to serve and ship (teleportbeat.sessions); 0 turns session shipping off")
	)
	flag.Parse()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}

	srv, sessionEvents, idFile, err := startDouble(abs, *nSess)
	if err != nil {
		return err
	}
	defer srv.Stop()

	bin := *beat
	if bin == "" {
		step("Building teleportbeat")
		bin = filepath.Join(abs, "teleportbeat")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}

	outDir := filepath.Join(abs, "events")
	cfgPath := filepath.Join(abs, "teleportbeat.yml")
	cfg := fmt.Sprintf(`# Written by tools/demo.
teleportbeat.teleport:
  addr: [%q]
  identity_file: %q
teleportbeat.audit:
  # The sample events are from 2019 to 2023: read from the start.
  start_time: "2019-01-01T00:00:00Z"
  poll_interval: 1s
  safety_margin: 1s
teleportbeat.sessions:
  enabled: %t
output.file:
  path: %q
  filename: teleport-audit
  rotate_on_startup: false
`, srv.Addr(), idFile, *nSess > 0, outDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}

	step("Running teleportbeat with the file output")
	logFile := filepath.Join(abs, "teleportbeat.log")
	lf, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(bin, "run", "-e", "-c", cfgPath,
		"--path.home", abs, "--path.data", filepath.Join(abs, "data"), "--path.logs", filepath.Join(abs, "logs"))
	cmd.Stdout, cmd.Stderr = lf, lf
	fmt.Printf("   %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("teleportbeat did not stop within 30s")
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	deadline := time.After(*timeout)
	want := srv.Store.Len() + sessionEvents
	last := -1
	for {
		n, files := countEvents(outDir)
		if n != last {
			fmt.Printf("   %d / %d events written\n", n, want)
			last = n
		}
		if n >= want {
			if err := stop(); err != nil {
				return fmt.Errorf("stopping teleportbeat: %w (log: %s)", err, logFile)
			}
			return summary(files, n, cfgPath, logFile, filepath.Join(abs, "data", "registry"))
		}
		select {
		case err := <-exited:
			return fmt.Errorf("teleportbeat exited early: %v (log: %s)", err, logFile)
		case <-deadline:
			_ = stop()
			return fmt.Errorf("only %d of %d events written after %s (log: %s)", n, want, *timeout, logFile)
		case <-ctx.Done():
			_ = stop()
			return fmt.Errorf("interrupted")
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// startDouble starts the Teleport double serving the sample events and
// nSess generated sessions with their recordings, and writes an identity
// for it under dir. It returns the double, the session events to expect
// and the identity file.
func startDouble(dir string, nSess int) (*teleporttest.Server, int, string, error) {
	step("Starting the Teleport test double (Teleport's gRPC audit API over mutual TLS)")
	srv, err := teleporttest.New(teleporttest.Config{})
	if err != nil {
		return nil, 0, "", err
	}
	fail := func(err error) (*teleporttest.Server, int, string, error) {
		srv.Stop()
		return nil, 0, "", err
	}
	evs, err := teleporttest.CorpusEvents()
	if err != nil {
		return fail(err)
	}
	srv.Store.Add(evs...)
	// The sample events hold no session recordings: serve a few generated
	// sessions, recorded and uploaded on the sample events' last day, so
	// that session shipping can be seen too.
	sessionEvents := 0
	if nSess > 0 {
		g := teleporttest.NewGenerator(1)
		last := evs[0].Time
		for _, e := range evs {
			if e.Time.After(last) {
				last = e.Time
			}
		}
		for i := range nSess {
			sid, rec, up := g.Session(last.Add(time.Duration(i+1)*time.Minute), 40)
			srv.AddSession(sid, rec)
			srv.Store.Add(up)
			for _, e := range rec {
				if e.Type != "print" { // left out by sessions.exclude_event_types' default
					sessionEvents++
				}
			}
		}
	}
	id, err := srv.NewIdentity(24 * time.Hour)
	if err != nil {
		return fail(err)
	}
	idFile := filepath.Join(dir, "identity")
	if err := id.WriteIdentityFile(idFile); err != nil {
		return fail(err)
	}
	fmt.Printf("   cluster %q at %s, serving %d sample audit events (%s)\n", srv.ClusterName(), srv.Addr(), len(evs), strings.Join(samples.CorpusFiles(), ", "))
	if nSess > 0 {
		fmt.Printf("   and %d generated SSH sessions: %d session.upload audit events, %d recorded session events to ship\n", nSess, nSess, sessionEvents)
	}
	return srv, sessionEvents, idFile, nil
}

func step(s string) { fmt.Println("==>", s) }

// envOr is the environment variable's value, or def when it is unset.
// (README's executable docs run the demo as written, into a directory of
// their own.)
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func countEvents(dir string) (int, []string) {
	files, _ := filepath.Glob(filepath.Join(dir, "teleport-audit*.ndjson"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n += bytes.Count(b, []byte("\n"))
	}
	return n, files
}

func summary(files []string, n int, cfg, log, registry string) error {
	sessions := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		sessions += bytes.Count(b, []byte(`"dataset":"teleportbeat.session"`))
	}
	step(fmt.Sprintf("Done: %d ECS-mapped Teleport audit events and %d session recording events written", n-sessions, sessions))
	for _, f := range files {
		fmt.Printf("   events:   %s\n", f)
	}
	fmt.Printf("   config:   %s\n   log:      %s\n   registry: %s (teleportbeat resumes from here)\n", cfg, log, registry)
	if len(files) == 0 {
		return nil
	}
	f, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var doc map[string]any
		if json.Unmarshal(sc.Bytes(), &doc) != nil {
			continue
		}
		if doc["source"] == nil {
			continue // show an event with a source address
		}
		delete(doc, "agent")
		pretty, _ := json.MarshalIndent(doc, "   ", "  ")
		fmt.Printf("   one of them:\n   %s\n", pretty)
		break
	}
	return nil
}
