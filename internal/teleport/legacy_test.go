package teleport

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest/typed"
)

// TestReaderReadsATeleportWithoutUnstructuredSearch: Teleport 12 has no
// GetUnstructuredEvents; the reader says so once and reads every event with
// the typed SearchEvents, as the same events.
func TestReaderReadsATeleportWithoutUnstructuredSearch(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	h := newHarnessWith(t, teleporttest.Config{Version: "12.4.32", Typed: typed.OneOf})
	h.conn.log = log
	start := time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)
	h.srv.Store.Add(teleporttest.NewGenerator(31).Events(250, start, time.Second)...)
	_, collect := h.run(h.config(), cursor.Position{WindowStart: start})
	got := collect(250)
	require.Equal(t, storedIDs(h.srv.Store), ids(got))
	for _, b := range got {
		for _, e := range b.Events {
			require.NotEmpty(t, e.Type)
			require.False(t, e.Time.IsZero())
			require.Equal(t, e.Type, e.Fields["event"], "the payload is the event's")
		}
	}
	require.Equal(t, 1, countOf(logs.String(), "This Teleport has no GetUnstructuredEvents"), "said once, not per page")
}

// TestSessionsOfATeleportWithoutUnstructuredStream: Teleport 13 has no
// StreamUnstructuredSessionEvents; the recording is read with the typed
// StreamSessionEvents, the same events in the same order, from any index.
func TestSessionsOfATeleportWithoutUnstructuredStream(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	h := newHarnessWith(t, teleporttest.Config{Version: "13.1.3", Typed: typed.OneOf})
	h.conn.log = log
	sid, rec, _ := teleporttest.NewGenerator(32).Session(time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC), 30)
	h.srv.AddSession(sid, rec)
	read := func(from int64) []*event.Event {
		al, err := h.conn.AuditLog(context.Background())
		require.NoError(t, err)
		ch, errc := al.StreamUnstructuredSessionEvents(context.Background(), sid, from)
		var out []*event.Event
		for {
			select {
			case e, ok := <-ch:
				if !ok {
					return out
				}
				out = append(out, e)
			case err := <-errc:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("the stream did not end")
			}
		}
	}
	all := read(0)
	require.Len(t, all, 30)
	for i, e := range all {
		require.EqualValues(t, i, e.Index)
		require.Equal(t, rec[i].Type, e.Type)
		require.Equal(t, rec[i].ID, e.Key())
	}
	require.Len(t, read(20), 10, "from an index")
	require.Equal(t, 1, countOf(logs.String(), "This Teleport has no StreamUnstructuredSessionEvents"))
	al, err := h.conn.AuditLog(context.Background())
	require.NoError(t, err)
	require.True(t, al.LegacySessions())
	require.False(t, al.LegacySearch(), "Teleport 13 has the unstructured search")
}

func countOf(s, sub string) int {
	n := 0
	for i := 0; ; {
		j := indexFrom(s, sub, i)
		if j < 0 {
			return n
		}
		n++
		i = j + len(sub)
	}
}

func indexFrom(s, sub string, from int) int {
	if from >= len(s) {
		return -1
	}
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
