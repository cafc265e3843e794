package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/elastic/mock-es/pkg/api"
)

type stringer string

func (s stringer) String() string { return string(s) }

// startMockES serves Elastic's mock Elasticsearch (every bulk item
// succeeds) on a free local port.
func startMockES() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := api.NewAPIHandler(stringer("7f0c5a57-bench"), "bench-cluster", nil, time.Now().Add(24*time.Hour), 0, 0, 0, 0, 0, 0)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// repoRoot finds the repository's root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/teleportbeat/teleportbeat\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark from inside the teleportbeat repository")
		}
		dir = parent
	}
}

// build compiles teleportbeat and Filebeat (from bench/filebeat, the same
// pinned beats module) unless binaries were given.
func build(o *options, root string, log io.Writer) error {
	if o.teleportbeat == "" {
		o.teleportbeat = filepath.Join(o.work, "bin", "teleportbeat")
		fmt.Fprintln(log, "==> building teleportbeat as releases are (static, stripped)")
		if err := goBuild(root, o.teleportbeat, log, releaseBuild...); err != nil {
			return fmt.Errorf("build teleportbeat: %w", err)
		}
	}
	if o.filebeat == "" && slices.Contains(o.variants, "filebeat") {
		o.filebeat = filepath.Join(o.work, "bin", "filebeat")
		fmt.Fprintln(log, "==> building filebeat from the pinned beats module (bench/filebeat)")
		if err := goBuild(filepath.Join(root, "bench", "filebeat"), o.filebeat, log); err != nil {
			return fmt.Errorf("build filebeat: %w", err)
		}
	}
	return nil
}

// releaseBuild are the settings teleportbeat's release binaries are built
// with (magefile.go, internal/build/packaging): no cgo, so one static binary runs
// on every Linux; stripped. (Releases also use -trimpath, which changes
// nothing at run time; without it the build shares the tests' compile
// cache.) Filebeat is built with Go's defaults: cgo where a C compiler is
// found, as Elastic's Linux releases have it.
var releaseBuild = []string{"CGO_ENABLED=0", "-ldflags=-s -w"}

func goBuild(dir, out string, log io.Writer, settings ...string) error {
	args := []string{"build", "-o", out}
	env := []string{"GONOSUMDB=github.com/elastic"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CGO_ENABLED=") {
			env = append(env, kv)
		}
	}
	for _, s := range settings {
		if strings.HasPrefix(s, "-") {
			args = append(args, s)
		} else {
			env = append(env, s)
		}
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}

// benchmark runs every selected variant o.runs times, alternately.
func benchmark(ctx context.Context, o options, root string, log io.Writer) (*report, error) {
	if err := build(&o, root, log); err != nil {
		return nil, err
	}
	shipped, err := os.ReadFile(filepath.Join(root, "teleportbeat.yml"))
	if err != nil {
		return nil, err
	}
	o.shippedConfig = string(shipped)
	fmt.Fprintf(log, "==> generating %d events over %d days\n", o.events, o.days)
	d, err := newDataset(o.events, o.days, o.work)
	if err != nil {
		return nil, err
	}
	defer d.close()
	esURL, stopES, err := startMockES()
	if err != nil {
		return nil, err
	}
	defer stopES()
	fmt.Fprintf(log, "    %d events, %.0f bytes each on average; Teleport double at %s, mock-es at %s\n", d.events, float64(d.bytes)/float64(d.events), d.srv.Addr(), esURL)

	rep := newReport(o, d, root)
	for i := 1; i <= o.runs; i++ {
		for _, name := range o.variants {
			v := variantByName(name)
			d.srv.Faults.Reset()
			if v.latency {
				d.srv.Faults.SetSearchLatency(o.latency)
				d.srv.Faults.SetExportLatency(o.latency)
			}
			bin := o.teleportbeat
			if v.beat == "filebeat" {
				bin = o.filebeat
			}
			cfg, set := v.config(d, o)
			r := beatRun{
				bin:     bin,
				dir:     filepath.Join(o.work, fmt.Sprintf("%s-%d", v.name, i)),
				config:  cfg,
				set:     append(set, fmt.Sprintf("output.elasticsearch.hosts=[%s]", esURL), "setup.template.enabled=false", "setup.ilm.enabled=false"),
				n:       int64(d.events),
				timeout: o.timeout,
			}
			if o.profile && v.beat == "teleportbeat" {
				r.flags = []string{"--cpuprofile", filepath.Join(r.dir, "cpu.prof"), "--memprofile", filepath.Join(r.dir, "mem.prof")}
				r.set = append(r.set, "http.pprof.enabled=true")
				r.heapAt = int64(o.events) / 2
			}
			m, err := r.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", v.name, i, err)
			}
			if m.failed > 0 || m.dropped > 0 {
				return nil, fmt.Errorf("%s, run %d: %d events failed and %d dropped in the output; see %s", v.name, i, m.failed, m.dropped, r.dir)
			}
			rep.add(v.name, m)
			fmt.Fprintf(log, "    run %d %-28s %9.0f events/s  %6.2f CPU s per million  peak RSS %4d MiB (anonymous %4d)  peers %6.2f CPU s per million  (%s, first ACK after %s)\n", i, v.name, m.eventsPerSecond(), m.cpuPerMillion(), m.peakRSS>>20, m.peakAnon>>20, m.peerCPUPerMillion(), m.wall.Round(time.Millisecond), m.firstAck.Round(time.Millisecond))
		}
	}
	if len(o.liveRates) > 0 {
		fmt.Fprintf(log, "==> live runs: events as they happen, backends %v, at %v events/s for %s each\n", o.liveBackends, o.liveRates, o.liveDuration)
		if rep.live, err = liveBench(ctx, o, log); err != nil {
			return nil, err
		}
	}
	if o.idleDuration > 0 {
		fmt.Fprintf(log, "==> idle runs: a quiet cluster, %s each after settling (6 minutes: the reader keeps a 2 s cap for 5 minutes after the last events)\n", o.idleDuration)
		if rep.idle, err = idleBench(ctx, o, o.idleDuration, log); err != nil {
			return nil, err
		}
	}
	return rep, nil
}
