package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/typedevents"
)

// TestReaderReadsATeleportWithoutUnstructuredSearch: Teleport 12 has no
// GetUnstructuredEvents; the reader says so once and reads every event with
// the typed SearchEvents, as the same events.
func TestReaderReadsATeleportWithoutUnstructuredSearch(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	h := newHarnessLogged(t, teleporttest.Config{Version: "12.4.32", Typed: typedevents.OneOf}, log)
	start := time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(31).Events(250, start, time.Second)...)
	_, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	got := collect(250)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))
	for _, b := range got {
		for _, e := range b.Events {
			require.NotEmpty(t, e.Type)
			require.False(t, e.Time.IsZero())
			require.Equal(t, e.Type, e.String("event"), "the payload is the event's")
		}
	}
	require.Equal(t, 1, strings.Count(logs.String(), "This Teleport has no GetUnstructuredEvents"), "said once, not per page")
}
