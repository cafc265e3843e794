package teleport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/typedevents"
)

// newConn starts a double configured by tc and connects to it, logging to
// log.
func newConn(t *testing.T, tc teleporttest.Config, log *logp.Logger) (*teleporttest.Server, *Conn) {
	t.Helper()
	srv, idPath := teleporttest.StartWithIdentity(t, t.TempDir(), tc)
	cfg := config.Default().Teleport
	cfg.Addr = []string{srv.Addr()}
	cfg.IdentityFile = idPath
	cfg.DialTimeout = 5 * time.Second
	creds, err := NewCredentials(cfg)
	require.NoError(t, err)
	conn := NewConn(cfg, creds, log)
	t.Cleanup(conn.Close)
	return srv, conn
}

// TestSessionsOfATeleportWithoutUnstructuredStream: Teleport 13 has no
// StreamUnstructuredSessionEvents; the recording is read with the typed
// StreamSessionEvents, the same events in the same order, from any index.
func TestSessionsOfATeleportWithoutUnstructuredStream(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	srv, conn := newConn(t, teleporttest.Config{Version: "13.1.3", Typed: typedevents.OneOf}, log)
	sid, rec, _ := teleporttest.NewGenerator(32).Session(time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC), 30)
	srv.AddSession(sid, rec)
	read := func(from int64) []*event.Event {
		al, err := conn.AuditLog(context.Background())
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
	require.Equal(t, 1, strings.Count(logs.String(), "This Teleport has no StreamUnstructuredSessionEvents"))
	al, err := conn.AuditLog(context.Background())
	require.NoError(t, err)
	require.True(t, al.LegacySessions())
	require.False(t, al.LegacySearch(), "Teleport 13 has the unstructured search")
}
