// Command bench measures teleportbeat against Filebeat on the same Teleport
// audit events, side by side on one machine (see bench/README.md):
//
//	GONOSUMDB=github.com/elastic go run ./bench
//
// It generates the events, serves them from the Teleport test double (gRPC
// over mutual TLS) and writes them to an NDJSON file; runs teleportbeat
// against the double and Filebeat (filestream, ndjson parser) against the
// file, both into mock-es, alternately, several times; and prints the
// medians and ratios, appending them to bench/RESULTS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the harness's settings.
type options struct {
	events       int
	runs         int
	latency      time.Duration
	days         int
	results      string
	work         string
	keep         bool
	teleportbeat string
	filebeat     string
	variants     []string
	timeout      time.Duration
	note         string
	profile      bool
	liveRates    []int
	liveBackends []string
	liveDuration time.Duration
	// idleShippedOnly runs the shipped idle variant only (an older
	// teleportbeat knows no poll_interval_min).
	idleShippedOnly bool
	idleDuration    time.Duration
	athenaBatch     time.Duration
	set             []string // more teleportbeat settings (-set key=value), to try a lever

	shippedConfig string // teleportbeat.yml as shipped
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	smoke := fs.Bool("smoke", false, "a short run that checks the harness works: 5,000 events, one run of each, no RESULTS.md")
	fs.IntVar(&o.events, "events", 200000, "events to generate")
	fs.IntVar(&o.runs, "runs", 3, "runs of each variant (medians are reported)")
	fs.DurationVar(&o.latency, "latency", 50*time.Millisecond, "latency added to every Teleport page (and export chunk) in the +latency variants")
	fs.IntVar(&o.days, "days", 3, "the events are spread over this many complete past days")
	fs.StringVar(&o.results, "results", "", "file to append the results to (default bench/RESULTS.md; \"-\" for none)")
	fs.StringVar(&o.work, "work", "", "work directory (default: a new temporary one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, data)")
	fs.StringVar(&o.teleportbeat, "teleportbeat", "", "teleportbeat binary (default: build it)")
	fs.StringVar(&o.filebeat, "filebeat", "", "filebeat binary (default: build it from bench/filebeat)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest a single run may take")
	fs.BoolVar(&o.profile, "profile", false, "write a CPU and a memory profile of every teleportbeat run into its directory (keep it with -keep)")
	fs.StringVar(&o.note, "note", "", "a note stored with the results (what changed)")
	variants := fs.String("variants", "", "comma-separated variants to run (default: all): "+variantNames())
	liveRates := fs.String("live-rates", "20,200,2000", "events/s of the live runs (freshness, searches, the late-event sweeps' cost); \"none\" for none")
	liveBackends := fs.String("live-backends", "file,athena", "Teleport audit backends the live runs imitate: file (searchable at once), athena (searchable in batches of up to a minute)")
	fs.DurationVar(&o.liveDuration, "live-duration", 2*time.Minute, "how long each live run produces events")
	fs.BoolVar(&o.idleShippedOnly, "idle-shipped-only", false, "run only the shipped idle variant (for a teleportbeat older than poll_interval_min, given with -teleportbeat)")
	fs.DurationVar(&o.athenaBatch, "athena-batch", time.Minute, "the athena backend's batch interval (Teleport's batchMaxInterval)")
	fs.DurationVar(&o.idleDuration, "idle-duration", 5*time.Minute, "how long each idle run (a quiet cluster) is measured; 0 for none")
	fs.Func("set", "a teleportbeat setting (key=value) added to its runs, to try a lever; repeatable, stored with the results", func(kv string) error {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("%q is not key=value", kv)
		}
		o.set = append(o.set, kv)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *smoke {
		o.events, o.runs, o.days = 5000, 1, 2
		*liveRates, o.liveDuration, o.idleDuration, o.athenaBatch = "100", 10*time.Second, 10*time.Second, 5*time.Second
		if o.results == "" {
			o.results = "-"
		}
	}
	if *liveRates != "none" && *liveRates != "" {
		for _, f := range strings.Split(*liveRates, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return o, fmt.Errorf("-live-rates: %q is not a positive number of events per second", f)
			}
			o.liveRates = append(o.liveRates, n)
		}
	}
	for _, b := range strings.Split(*liveBackends, ",") {
		b = strings.TrimSpace(b)
		if _, ok := backends[b]; !ok {
			return o, fmt.Errorf("-live-backends: %q is not a backend (file, athena)", b)
		}
		o.liveBackends = append(o.liveBackends, b)
	}
	if o.events < 100 || o.runs < 1 || o.days < 1 {
		return o, errors.New("-events must be at least 100, -runs and -days at least 1")
	}
	var err error
	if o.variants, err = selectVariants(*variants); err != nil {
		return o, err
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.results == "" {
		o.results = filepath.Join(root, "bench", "RESULTS.md")
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "teleportbeat-bench"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.work)
		}
	}
	rep, err := benchmark(ctx, o, root, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(rep.markdown())
	if o.results != "-" {
		if err := rep.appendTo(o.results); err != nil {
			return err
		}
		fmt.Printf("\nappended to %s\n", o.results)
	}
	return nil
}
