package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestARefusedStartKeyLosesNothing: the beat stops with a start key in its
// registry; meanwhile the audit log behind it changes (a backend restored
// or migrated: Teleport refuses every key it gave out before) and new
// events come. The restarted beat does not retry the key forever: it says
// so once, reads on without it, and stores every event once.
func TestARefusedStartKeyLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	es, out := esSetup(t)
	evs := e.servedEvents(1500)
	port := freePort(t)
	cfg := e.config("teleportbeat.yml", out+fmt.Sprintf("teleportbeat.audit.batch_size: 100\nhttp.enabled: true\nhttp.port: %d\n", port))
	p := e.start(cfg)
	waitFor(t, 2*time.Minute, "the first run's events", func() bool { return es.Count() >= len(expectedIDs(evs)) })
	e.settle()
	p.stop()

	e.tp.Store.Restore()
	more := e.gen.Events(900, time.Now().Add(-30*time.Minute), 100*time.Millisecond)
	e.tp.Store.Add(more...)
	all := append(evs, more...)
	p = e.start(cfg)
	waitFor(t, 2*time.Minute, "the new events after the refused key", func() bool { return es.Count() >= len(expectedIDs(all)) })
	e.settle()
	s := stats(t, port)
	p.stop()

	checkDocs(t, es, all)
	require.Equal(t, 1, strings.Count(p.logs.String(), "Teleport refuses the start key of the audit search"), "said once")
	require.Equal(t, 1.0, num(s, "teleportbeat", "audit", "start_keys_refused"))
	_, _, rejected := es.Stats()
	t.Logf("RESULT refused start key: served %d (%d after the restore), stored %d, refused %d, lost 0", len(all), len(more), es.Count(), rejected)
}
