package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSmoke runs the whole harness on a few thousand events, one run of
// each variant, so that it never rots. It checks that every run saw every
// event acknowledged and that the report has a row for each variant; it
// asserts nothing about speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Filebeat and runs every variant")
	}
	work := t.TempDir()
	results := filepath.Join(work, "RESULTS.md")
	o, err := parseFlags([]string{"-smoke", "-work", work, "-results", results, "-teleportbeat", os.Getenv("TELEPORTBEAT_BINARY")})
	require.NoError(t, err)
	root, err := repoRoot()
	require.NoError(t, err)
	var log bytes.Buffer
	rep, err := benchmark(context.Background(), o, root, &log)
	require.NoError(t, err, log.String())
	t.Log(log.String())
	for _, v := range variants {
		ms := rep.runs[v.name]
		require.Len(t, ms, 1, v.name)
		require.Equal(t, int64(5000), ms[0].acked, v.name)
		require.Positive(t, ms[0].cpu, v.name)
		require.Positive(t, ms[0].peakRSS, v.name)
	}
	require.NoError(t, rep.appendTo(results))
	md, err := os.ReadFile(results)
	require.NoError(t, err)
	for _, v := range variants {
		require.Contains(t, string(md), "| "+v.name+" |")
	}
	require.True(t, strings.HasPrefix(string(md), "# Benchmark results"))
	require.Contains(t, string(md), "teleportbeat / filebeat: throughput ×")

	// The live runs (both backends) stored every event and measured
	// their freshness; the idle runs counted searches.
	require.Len(t, rep.live, 2)
	for _, l := range rep.live {
		require.Equal(t, 100, l.rate)
		require.Positive(t, l.events)
		require.Positive(t, l.late)
		require.GreaterOrEqual(t, l.stored, l.events+l.late)
		require.Positive(t, l.fresh.p50, l.backend)
		require.LessOrEqual(t, l.fresh.p50, l.fresh.p99, l.backend)
		require.LessOrEqual(t, l.fresh.p50, l.age.p50, "%s: searchable after the event's time", l.backend)
		require.Positive(t, l.searchesPerMinute)
	}
	require.Positive(t, rep.live[1].batches, "athena: events released in batches")
	require.Len(t, rep.idle, 2)
	for _, i := range rep.idle {
		require.Positive(t, i.searchesPerHour, i.name)
	}
	require.Contains(t, string(md), "sweep reads per event shipped")
	require.Contains(t, string(md), "searches per hour")
}

func TestMedian(t *testing.T) {
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

func TestProcessMetricsOfThisProcess(t *testing.T) {
	// The kernel counts CPU time in clock ticks: a process that has not
	// used one yet (this test alone, under -short) reads 0. Work until it
	// has, rather than assume the tests before it did.
	var cpu time.Duration
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for sink := 0; cpu == 0 && time.Now().Before(deadline); {
		for i := range 1_000_000 {
			sink += i
		}
		_ = sink
		cpu, err = processCPU(os.Getpid())
		require.NoError(t, err)
	}
	require.Positive(t, cpu)
	rss, err := peakRSS(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, rss, int64(1<<20))
}

func TestUnknownVariantIsRefused(t *testing.T) {
	_, err := parseFlags([]string{"-variants", "filebeat,logstash"})
	require.ErrorContains(t, err, `unknown variant "logstash"`)
}

func TestPollEvery(t *testing.T) {
	const n = 200000
	for _, c := range []struct {
		acked   int64
		elapsed time.Duration
		want    time.Duration
	}{
		{0, 0, 100 * time.Millisecond},                   // no rate yet
		{20000, 2 * time.Second, 250 * time.Millisecond}, // 18 s to go
		{n - n/20, 10 * time.Second, 10 * time.Millisecond},
		{150000, 100 * time.Second / 1000, 10 * time.Millisecond}, // fast: 33 ms to go
		{n, 10 * time.Second, 10 * time.Millisecond},
	} {
		if got := pollEvery(c.acked, n, c.elapsed); got != c.want {
			t.Errorf("pollEvery(%d of %d after %s) = %s, want %s", c.acked, n, c.elapsed, got, c.want)
		}
	}
}
