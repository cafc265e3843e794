package tests

// Every Teleport a user runs: the main paths against doubles of
// Teleport 13 (no unstructured session stream, no export API), 16 (the
// export API) and the pinned API's version. README's support matrix comes
// from this test.

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/typedevents"
)

// TestMainPathsOnEveryVersion: past days, today's events, and session
// recordings, each stored once, on each version; what the version lacks
// is said once, with the method used instead, and never retried.
func TestMainPathsOnEveryVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		version                              string
		export, legacySessions, legacySearch bool
	}{
		{"12.4.32", false, true, true},
		{"13.1.3", false, true, false},
		{"16.4.6", true, false, false},
		{"18.0.0-dev", true, false, false},
	} {
		t.Run(v.version, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, teleporttest.Config{Version: v.version, Typed: typedevents.OneOf})
			audit := append(e.addPastDays(2, 1500), e.addGenerated(1000)...)
			recs := e.addSessions(3, 40)
			uploads := e.tp.Store.Len() - len(audit)
			es, out := esSetup(t)
			p := e.start(e.config("teleportbeat.yml", out+"teleportbeat.sessions.enabled: true\n"))
			wantSessions := sessionDocs(recs)
			waitFor(t, 3*time.Minute, "every audit and session event", func() bool {
				return es.Count() >= len(expectedIDs(audit))+uploads+len(wantSessions)
			})
			e.settle()
			p.stop()

			all := e.tp.Store.All()
			var auditDocs, sessionDocsStored int
			for _, d := range es.Docs() {
				if strings.Contains(d.ID, "/") {
					sessionDocsStored++
				} else {
					auditDocs++
				}
			}
			require.Equal(t, len(expectedIDs(all)), auditDocs, "every audit event once")
			require.Equal(t, len(wantSessions), sessionDocsStored, "every recorded event but terminal output, once")
			for id := range wantSessions {
				_, ok := es.Doc(id)
				require.True(t, ok, "session event %s", id)
			}
			logs := p.logs.String()
			if v.export {
				require.Positive(t, e.tp.ExportCalls(), "past days through the export API")
			} else {
				require.Zero(t, e.tp.ExportCalls())
				require.Equal(t, 1, strings.Count(logs, "Teleport has no audit export API here"), "said once")
			}
			if v.legacySessions {
				require.Equal(t, 1, strings.Count(logs, "This Teleport has no StreamUnstructuredSessionEvents"), "said once")
			} else {
				require.NotContains(t, logs, "StreamSessionEvents")
			}
			if v.legacySearch {
				require.Equal(t, 1, strings.Count(logs, "This Teleport has no GetUnstructuredEvents"), "said once")
			} else {
				require.NotContains(t, logs, "SearchEvents")
			}
			require.NotContains(t, logs, "Session recording stream failed", "nothing retried")
			t.Logf("RESULT version-%s: %d audit and %d session events stored once; export API %v; sessions via %s", v.version, auditDocs, sessionDocsStored, v.export,
				map[bool]string{true: "StreamSessionEvents (typed)", false: "StreamUnstructuredSessionEvents"}[v.legacySessions])
		})
	}
}
