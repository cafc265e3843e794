package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report collects the measurements of every run and summarises them.
type report struct {
	opts    options
	data    *dataset
	when    time.Time
	commit  string
	machine string
	order   []string
	runs    map[string][]measurement
	live    []liveResult
	idle    []idleResult
}

func newReport(o options, d *dataset, root string) *report {
	return &report{opts: o, data: d, when: time.Now().UTC(), commit: gitCommit(root), machine: machine(), runs: map[string][]measurement{}}
}

func (r *report) add(name string, m measurement) {
	if _, ok := r.runs[name]; !ok {
		r.order = append(r.order, name)
	}
	r.runs[name] = append(r.runs[name], m)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summary is the medians of one variant.
type summary struct {
	eps, cpuPerM, rssMiB, peerCPUPerM, anonMiB float64
}

func (r *report) summary(name string) (summary, bool) {
	ms, ok := r.runs[name]
	if !ok {
		return summary{}, false
	}
	var eps, cpu, rss, peer, anon []float64
	for _, m := range ms {
		eps = append(eps, m.eventsPerSecond())
		cpu = append(cpu, m.cpuPerMillion())
		rss = append(rss, float64(m.peakRSS)/(1<<20))
		peer = append(peer, m.peerCPUPerMillion())
		anon = append(anon, float64(m.peakAnon)/(1<<20))
	}
	return summary{median(eps), median(cpu), median(rss), median(peer), median(anon)}, true
}

// markdown renders the results as a RESULTS.md section.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s, commit %s\n\n", r.when.Format("2006-01-02 15:04 UTC"), r.commit)
	fmt.Fprintf(&b, "Machine: %s. %d events (%.0f bytes on average) over %d days, %d run(s) of each, medians; latency variants add %s per Teleport page/chunk.\n",
		r.machine, r.data.events, float64(r.data.bytes)/float64(r.data.events), r.opts.days, r.opts.runs, r.opts.latency)
	if r.opts.note != "" {
		fmt.Fprintf(&b, "Note: %s\n", r.opts.note)
	}
	if len(r.opts.set) > 0 {
		fmt.Fprintf(&b, "teleportbeat settings added for this run: `%s`\n", strings.Join(r.opts.set, "`, `"))
	}
	b.WriteString("\n| variant | events/s | CPU s per million events | peak RSS MiB | peak anonymous MiB | peers' CPU s per million |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, name := range r.order {
		s, _ := r.summary(name)
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.0f | %.0f | %.2f |\n", name, s.eps, s.cpuPerM, s.rssMiB, s.anonMiB, s.peerCPUPerM)
	}
	b.WriteString("\nPeers' CPU: the benchmark's own process meanwhile, which runs the Teleport double (teleportbeat's runs; it serves each event from bytes encoded once) and mock-es (every run), on the same cores as the beat.\n")
	b.WriteString("\n")
	if fb, ok := r.summary("filebeat"); ok {
		for _, name := range []string{"teleportbeat", "teleportbeat-search"} {
			if tb, ok := r.summary(name); ok {
				fmt.Fprintf(&b, "- %s / filebeat: throughput × %.2f (target ≥ 1.0), CPU per event × %.2f (target ≤ 1.0), peak RSS × %.2f (target ≤ 1.0), peak anonymous memory × %.2f (target ≤ 1.5)\n",
					name, tb.eps/fb.eps, tb.cpuPerM/fb.cpuPerM, tb.rssMiB/fb.rssMiB, tb.anonMiB/fb.anonMiB)
			}
		}
	}
	for _, pair := range [][2]string{{"teleportbeat+latency", "teleportbeat"}, {"teleportbeat-search+latency", "teleportbeat-search"}} {
		slow, ok1 := r.summary(pair[0])
		fast, ok2 := r.summary(pair[1])
		if ok1 && ok2 {
			fmt.Fprintf(&b, "- %s / %s: throughput × %.2f\n", pair[0], pair[1], slow.eps/fast.eps)
		}
	}
	if fb, ok := r.summary("filebeat"); ok {
		for _, name := range []string{"teleportbeat+latency", "teleportbeat-search+latency"} {
			if tb, ok := r.summary(name); ok {
				fmt.Fprintf(&b, "- %s / filebeat: throughput × %.2f (target ≥ 1.0)\n", name, tb.eps/fb.eps)
			}
		}
	}
	if ex, ok := r.summary("teleportbeat"); ok {
		if se, ok := r.summary("teleportbeat-search"); ok {
			fmt.Fprintf(&b, "- export API / search: throughput × %.2f\n", ex.eps/se.eps)
		}
	}
	b.WriteString("\n")
	if len(r.live) > 0 {
		fmt.Fprintf(&b, "Live runs (shipped teleportbeat.yml and default start; events as they happen, and late events besides (one in 200, at least 5 a second) searchable 5-40 s late; sweeps at 5 s and at max_delay, 1 min for the file backend and twice the batch interval for athena, so that they reach their steady state within the run). Backend file: an event is searchable at once; athena: events are searchable in batches, when the oldest has waited a minute (Teleport's Athena backend). Freshness over the punctual events: searchable in Teleport -> stored in Elasticsearch, and the event's time -> stored. Searches: every search Teleport answered (reader and sweeps) per minute of the run.\n\n")
		b.WriteString("| backend | events/s | for | events | searchable->stored p50 | p90 | p99 | time->stored p50 | p99 | max | searches per minute | late caught / served | latest late | sweep reads per event shipped | CPU s per million |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range r.live {
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.1f | %d / %d | %.0f s | %.2f | %.2f |\n",
				l.backend, l.rate, l.duration, l.events+l.late, l.fresh.p50.Seconds(), l.fresh.p90.Seconds(), l.fresh.p99.Seconds(),
				l.age.p50.Seconds(), l.age.p99.Seconds(), l.age.max.Seconds(), l.searchesPerMinute, l.caught, l.late, l.lateMax.Seconds(), l.readsPerEvent(), l.cpuSecondsPerMillion)
		}
		b.WriteString("\n")
	}
	if len(r.idle) > 0 {
		b.WriteString("Idle runs (a quiet cluster: 100 events ten minutes old, none new; counted after settling, six minutes for runs of five or more):\n\n| polling | searches per hour | CPU s per hour | over |\n| --- | ---: | ---: | ---: |\n")
		for _, i := range r.idle {
			fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s |\n", i.name, i.searchesPerHour, i.cpuPerH, i.duration)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// appendTo appends the results to path, creating it with a title.
func (r *report) appendTo(path string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		fmt.Fprintln(f, "# Benchmark results\n\nAppended by `go run ./bench` (see README.md here). Newest last.")
		fmt.Fprintln(f)
	}
	if _, err := f.WriteString(r.markdown()); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// machine describes the machine: CPU model, cores, memory, OS.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				mem = fmt.Sprintf(", %.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s, %s", model, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
