package ecs

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/elastic/elastic-agent-libs/mapstr"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

func TestEveryCorpusEventMaps(t *testing.T) {
	evs, err := teleporttest.CorpusEvents()
	require.NoError(t, err)
	require.Len(t, evs, 268)
	m := NewAuditMapper()
	now := time.Now()
	for _, e := range evs {
		out := m.Map(decoded(t, e), now)
		require.Equal(t, e.Time, out.Timestamp.UTC(), e.ID)
		id := event.IDOf(e.Proto())
		require.Equal(t, mapstr.M{"_id": id}, out.Meta)
		v, err := out.Fields.GetValue("event.action")
		require.NoError(t, err)
		require.Equal(t, e.Type, v)
		v, _ = out.Fields.GetValue("event.id")
		require.Equal(t, id, v)
		msg, _ := out.Fields.GetValue("message")
		require.NotEmpty(t, msg)
		v, _ = out.Fields.GetValue("event.dataset")
		require.Equal(t, "teleportbeat.audit", v)
		raw, err := out.Fields.GetValue("teleport.audit")
		require.NoError(t, err)
		require.Equal(t, e.Type, raw.(mapstr.M)["event"])
	}
}

func newEvent(t *testing.T, fields map[string]any) *event.Event {
	t.Helper()
	e, err := teleporttest.NewEvent(fields)
	require.NoError(t, err)
	return decoded(t, e)
}

// decoded is e as teleportbeat reads it off the wire.
func decoded(t testing.TB, e *teleporttest.Event) *event.Event {
	t.Helper()
	d, err := e.Decoded()
	require.NoError(t, err)
	return d
}

func TestECSFields(t *testing.T) {
	m := NewAuditMapper()
	out := m.Map(newEvent(t, map[string]any{
		"event": "session.start", "code": "T2000I", "uid": "u-1", "time": "2025-03-01T10:00:00.123Z",
		"user": "alice", "server_hostname": "node-1", "server_id": "srv-1",
		"addr.remote": "[2001:db8::1]:4242", "addr.local": "10.0.0.1:3022",
		"ei": 3.0, "size": "80:25", "ratio": 0.5,
		"server_labels": map[string]any{"teleport.dev/origin": "config"},
	}), time.Now())
	f := out.Fields
	get := func(k string) any {
		v, err := f.GetValue(k)
		require.NoError(t, err, k)
		return v
	}
	require.Equal(t, "alice", get("user.name"))
	require.Equal(t, "node-1", get("host.name"))
	require.Equal(t, "srv-1", get("host.id"))
	require.Equal(t, "2001:db8::1", get("source.ip"))
	require.Equal(t, 4242, get("source.port"))
	require.Equal(t, "success", get("event.outcome"))
	require.Equal(t, "T2000I", get("event.code"))
	require.Equal(t, "event", get("event.kind"))
	require.Equal(t, "teleport", get("event.module"))
	// Dotted keys are nested, integral numbers are integers.
	require.Equal(t, "10.0.0.1:3022", get("teleport.audit.addr.local"))
	require.Equal(t, int64(3), get("teleport.audit.ei"))
	require.Equal(t, 0.5, get("teleport.unmapped.ratio"), "a field the template does not know")
	require.Equal(t, "config", get("teleport.audit.server_labels.teleport.dev/origin"))
	require.Equal(t, time.Date(2025, 3, 1, 10, 0, 0, 123e6, time.UTC), out.Timestamp.UTC())
}

func TestOutcome(t *testing.T) {
	m := NewAuditMapper()
	for _, c := range []struct {
		fields map[string]any
		want   any
	}{
		{map[string]any{"event": "user.login", "code": "T1000W", "success": false}, "failure"},
		{map[string]any{"event": "user.login", "code": "T1000I", "success": true}, "success"},
		{map[string]any{"event": "exec", "code": "T3002E"}, "failure"},
		{map[string]any{"event": "exec", "code": "T3002I"}, "success"},
		{map[string]any{"event": "x"}, nil},
	} {
		c.fields["time"] = "2025-01-01T00:00:00Z"
		out := m.Map(newEvent(t, c.fields), time.Now())
		v, _ := out.Fields.GetValue("event.outcome")
		require.Equal(t, c.want, v, "%v", c.fields)
	}
}

func TestMissingTimeIsTagged(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pb := &auditlogpb.EventUnstructured{Type: "x", Id: "id", Unstructured: &structpb.Struct{Fields: map[string]*structpb.Value{"event": structpb.NewStringValue("x")}}}
	ev, err := event.FromProto(pb)
	require.NoError(t, err)
	out := NewAuditMapper().Map(ev, now)
	require.Equal(t, now, out.Timestamp)
	require.Equal(t, []string{"teleport_missing_time"}, out.Fields["tags"])
}

func TestSplitAddr(t *testing.T) {
	for _, c := range []struct {
		in   string
		ip   string
		port int
		ok   bool
	}{
		{"1.2.3.4:5678", "1.2.3.4", 5678, true},
		{"[2001:db8::1]:22", "2001:db8::1", 22, true},
		{"10.0.0.1", "10.0.0.1", 0, true},
		{"2a02:cf40:::3022", "2a02:cf40::", 3022, true},
		{"::ffff:10.1.2.3:443", "10.1.2.3", 443, true},
		{"hostname:22", "", 0, false},
		{"", "", 0, false},
	} {
		ip, port, ok := SplitAddr(c.in)
		require.Equal(t, c.ok, ok, c.in)
		if ok {
			require.Equal(t, netip.MustParseAddr(c.ip), ip, c.in)
			require.Equal(t, c.port, port, c.in)
		}
	}
}

// TestEveryDocumentSaysItsCluster: teleport.cluster is the event's own
// cluster_name (a leaf's events read through the root say the leaf), or
// the cluster the events are read from; a mapper that knows none leaves it
// to the event.
func TestEveryDocumentSaysItsCluster(t *testing.T) {
	m := NewAuditMapper().WithCluster("root.example.com")
	now := time.Now()
	leaf := m.Map(newEvent(t, map[string]any{"event": "session.start", "uid": "u1", "time": "2025-01-02T03:04:05Z", "cluster_name": "leaf-eu"}), now)
	v, _ := leaf.Fields.GetValue("teleport.cluster")
	require.Equal(t, "leaf-eu", v)
	bare := m.Map(newEvent(t, map[string]any{"event": "user.login", "uid": "u2", "time": "2025-01-02T03:04:05Z"}), now)
	v, _ = bare.Fields.GetValue("teleport.cluster")
	require.Equal(t, "root.example.com", v)
	none := NewSessionMapper().Map(newEvent(t, map[string]any{"event": "print", "uid": "u3", "time": "2025-01-02T03:04:05Z"}), now)
	_, err := none.Fields.GetValue("teleport.cluster")
	require.Error(t, err, "not known: not set")
}
