package ecs

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/elastic/elastic-agent-libs/mapstr"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// Shapes Elasticsearch refuses or that overwrite each other, as Teleport
// can send them: each mapped document is stored by the mapping-enforcing
// Elasticsearch, no value of the event is lost (every value is in the
// document), and the event is tagged where a key had to move.
func TestHostileShapesAreStoredWholeAndTagged(t *testing.T) {
	deep := map[string]any{"leaf": "bottom"}
	for range 30 {
		deep = map[string]any{"d": deep}
	}
	many := map[string]any{}
	for i := range 3000 {
		many[fmt.Sprintf("key_%d", i)] = fmt.Sprintf("v%d", i)
	}
	long := strings.Repeat("x", 40000)
	for _, tc := range []struct {
		name   string
		fields map[string]any
		moved  bool // tagged teleport_field_moved
	}{
		{"a label and its dotted neighbours", map[string]any{"event": "kube.request", "kubernetes_labels": map[string]any{"app": "web", "app.kubernetes.io/name": "web-ui", "app.kubernetes.io/part-of": "shop"}}, false},
		{"empty, dot-led and doubled dots at the top", map[string]any{"event": "user.login", "": "empty", ".lead": "lead", "x..y": "double", "trail.": "trailing", " ": "blank"}, true},
		{"invalid names inside a known object", map[string]any{"event": "session.start", "addr": map[string]any{"remote": "10.0.0.1:22", "": "e", ".x": "d"}}, true},
		{"a dotted key over a value", map[string]any{"event": "session.start", "addr_value": "x", "addr.remote": "10.0.0.1:22", "addr.local": "10.0.0.2:3022"}, false},
		{"a dotted key that collides with a plain one", map[string]any{"event": "session.start", "addr": map[string]any{"remote": "10.0.0.1:22"}, "addr.remote": "10.9.9.9:22"}, true},
		{"a dotted key under a value, at a path the template does not know", map[string]any{"event": "user.login", "user": "alice", "user.name": "bob"}, false},
		{"objects deeper than Elasticsearch's limits", map[string]any{"event": "future.thing", "deep": deep}, true},
		{"a deep object in a flattened field", map[string]any{"event": "kube.request", "kubernetes_labels": deep}, true},
		{"more new fields than the index takes", map[string]any{"event": "future.thing", "many": many}, false},
		{"NaN and infinities", map[string]any{"event": "db.session.query", "ei": math.NaN(), "affected_records": math.Inf(1), "future_number": math.Inf(-1)}, false},
		{"a very long value in a label, an unknown field and a misfit", map[string]any{"event": "kube.request", "kubernetes_labels": map[string]any{"big": long}, "future_text": long, "ei": long}, true},
		{"a key holding NUL", map[string]any{"event": "kube.request", "kubernetes_labels": map[string]any{"a\x00b": "nul"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := newESIndex(t)
			tc.fields["uid"] = "u-1"
			tc.fields["time"] = "2025-01-02T03:04:05Z"
			st, err := structpb.NewStruct(tc.fields)
			require.NoError(t, err)
			e, err := event.FromProto(&auditlogpb.EventUnstructured{Type: tc.fields["event"].(string), Id: "u-1", Unstructured: st})
			require.NoError(t, err)
			out := NewAuditMapper().Map(e, time.Now())
			require.Empty(t, es.refusal(out))
			doc := string(encode(t, out))
			for _, v := range leafStrings(tc.fields) {
				require.Contains(t, doc, v, "a value is lost")
			}
			require.Equal(t, tc.moved, hasTag(out.Fields, TagMoved))
		})
	}
}

// Both orders of a label and its dotted neighbour keep both, in the
// flattened field, with their names as Teleport wrote them.
func TestLabelsKeepTheirDottedNames(t *testing.T) {
	labels := map[string]any{"app": "web", "app.kubernetes.io/name": "web-ui"}
	e, err := teleporttest.NewEvent(map[string]any{"event": "kube.request", "uid": "u", "time": "2025-01-02T03:04:05Z", "kubernetes_labels": labels})
	require.NoError(t, err)
	doc := document(t, NewAuditMapper(), e)
	require.Equal(t, labels, doc["teleport"].(map[string]any)["audit"].(map[string]any)["kubernetes_labels"])
}

func hasTag(fields mapstr.M, tag string) bool {
	tags, _ := fields["tags"].([]string)
	return slices.Contains(tags, tag)
}

// leafStrings are the values of an event as text, as they must appear in
// the document's JSON.
func leafStrings(v any) []string {
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, leafStrings(e)...)
		}
		return out
	case string:
		b, _ := json.Marshal(x)
		return []string{strings.Trim(string(b), `"`)}
	case float64:
		switch {
		case math.IsNaN(x):
			return []string{"NaN"}
		case math.IsInf(x, 1):
			return []string{"+Inf"}
		case math.IsInf(x, -1):
			return []string{"-Inf"}
		}
	}
	return nil
}
