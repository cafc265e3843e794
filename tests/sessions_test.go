package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

type recording struct {
	sid    string
	events []*teleporttest.Event
}

// addSessions serves n recordings of size events, and their upload events
// in the audit log.
func (e *env) addSessions(n, size int) []recording {
	var out []recording
	start := time.Now().Add(-2 * time.Hour)
	for i := 0; i < n; i++ {
		sid, rec, up := e.gen.Session(start.Add(time.Duration(i)*time.Minute), size)
		e.tp.AddSession(sid, rec)
		e.tp.Store.Add(up)
		out = append(out, recording{sid: sid, events: rec})
	}
	return out
}

// sessionDocs returns the wanted session documents: every recorded event
// but terminal output, by _id.
func sessionDocs(recs []recording) map[string]*teleporttest.Event {
	want := map[string]*teleporttest.Event{}
	for _, r := range recs {
		for _, ev := range r.events {
			if ev.Type != "print" {
				want[fmt.Sprintf("%s/%d", r.sid, ev.Index)] = ev
			}
		}
	}
	return want
}

// TestShipsSessionRecordingsAndResumesThem: with teleportbeat.sessions
// enabled, every uploaded recording is streamed into teleport.session
// (without terminal output), a SIGKILL in the middle resumes half-sent
// sessions, and a recording that appears late is retried until it does.
func TestShipsSessionRecordingsAndResumesThem(t *testing.T) {
	e := newEnv(t)
	audit := e.addGenerated(500)
	recs := e.addSessions(20, 300)
	want := sessionDocs(recs)

	// One more upload whose recording is not stored yet.
	lateSID, lateRec, lateUp := e.gen.Session(time.Now().Add(-90*time.Minute), 30)
	e.tp.Store.Add(lateUp)
	for _, ev := range lateRec {
		if ev.Type != "print" {
			want[fmt.Sprintf("%s/%d", lateSID, ev.Index)] = ev
		}
	}

	es, out := esSetup(t)
	port := freePort(t)
	cfg := e.config("teleportbeat.yml", out+fmt.Sprintf("  bulk_max_size: 100\nteleportbeat.sessions:\n  enabled: true\n  concurrency: 4\n  missing_retry: 1s\nhttp.enabled: true\nhttp.host: 127.0.0.1\nhttp.port: %d\n", port))
	sessionCount := func() int {
		n := 0
		for _, d := range es.Docs() {
			if strings.Contains(d.ID, "/") {
				n++
			}
		}
		return n
	}

	p := e.start(cfg)
	waitFor(t, 2*time.Minute, "half of the session events", func() bool { return sessionCount() >= len(want)/2 })
	p.kill()
	t.Logf("SIGKILL with %d of %d session events stored", sessionCount(), len(want))

	p = e.start(cfg)
	p.waitLog(time.Minute, "Resuming session recordings")
	p.waitLog(time.Minute, "Session recordings not found yet")
	e.tp.AddSession(lateSID, lateRec)
	waitFor(t, 2*time.Minute, "every session event", func() bool { return sessionCount() >= len(want) })
	waitFor(t, time.Minute, "every audit event", func() bool { return es.Count() >= len(want)+len(audit)+len(recs)+1 })
	e.settle()
	// /stats says what happened to the recordings of this run: sessions
	// seen (registered), shipped (completed), their events, failures
	// (stream_errors), those in progress (active) and waiting.
	s := stats(t, port)
	sess := func(k string) float64 { return num(s, "teleportbeat", "sessions", k) }
	require.True(t, hasPath(s, "teleportbeat", "sessions", "stream_errors"), "%v", s["teleportbeat"])
	require.GreaterOrEqual(t, sess("completed"), 1.0, "the sessions the SIGKILL left half-sent and the late one")
	require.GreaterOrEqual(t, sess("completed"), sess("registered"), "every session seen by this run (and those it resumed) shipped")
	require.Greater(t, sess("events_published"), 0.0)
	require.Zero(t, sess("active"), "none in progress")
	// The generated audit events include uploads of recordings the double
	// does not have: those wait (until missing_timeout), the late one came.
	noRecording := 0
	for _, ev := range audit {
		if ev.Type == "session.upload" {
			noRecording++
		}
	}
	require.Positive(t, noRecording)
	require.Equal(t, float64(noRecording), sess("waiting_for_upload"), "exactly the uploads without a recording wait: %v", s["teleportbeat"])
	p.stop()

	got := 0
	for _, d := range es.Docs() {
		if !strings.Contains(d.ID, "/") {
			continue
		}
		got++
		ev, ok := want[d.ID]
		require.True(t, ok, "unexpected session document %s", d.ID)
		event := d.Source["event"].(map[string]any)
		require.Equal(t, "teleportbeat.session", event["dataset"])
		require.Equal(t, ev.Type, event["action"])
		raw := d.Source["teleport"].(map[string]any)["session"].(map[string]any)
		require.Equal(t, float64(ev.Index), raw["ei"])
	}
	require.Equal(t, len(want), got, "every recorded event but terminal output, once")
}
