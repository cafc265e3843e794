package ecs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// shapesOfValues are the values Teleport could send in any field: every
// JSON kind, the strings that parse as a number, an IP or a date and the
// ones that do not, lists of each kind and mixed lists.
var shapesOfValues = map[string]any{
	"word":              "some-text",
	"numeric string":    "12345",
	"decimal string":    "12.5",
	"bad number":        "1.5x",
	"rfc3339":           "2025-01-02T03:04:05.123456789Z",
	"bad date":          "2025-13-45 25:61",
	"ip":                "10.1.2.3",
	"ipv6":              "2001:db8::1",
	"empty":             "",
	"integer":           7,
	"negative":          -3,
	"huge":              1e30,
	"float":             2.5,
	"true":              true,
	"object":            map[string]any{"k": "v", "n": map[string]any{"m": 1}},
	"empty object":      map[string]any{},
	"list of words":     []any{"a", "b"},
	"list of numbers":   []any{1, 2},
	"list of objects":   []any{map[string]any{"k": "v"}},
	"mixed list":        []any{1, "x", true},
	"objects and words": []any{"x", map[string]any{"k": "v"}},
}

// withPath sets the dotted path in fields to v, as nested objects.
func withPath(fields map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := fields
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// TestEveryShapeOfEveryFieldFitsTheTemplate: whatever shape of value
// arrives in whatever known raw field, and in the fields of event types the
// pinned API does not know, the mapped document fits the index template:
// Elasticsearch will not refuse it. What does not fit is kept under
// teleport.misfits, and the event is tagged.
func TestEveryShapeOfEveryFieldFitsTheTemplate(t *testing.T) {
	es := newESIndex(t)
	paths := make([]string, 0, len(rawFieldTypes))
	for p := range rawFieldTypes {
		if p == "event" || p == "uid" || p == "time" {
			continue // set by every event below
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	require.Greater(t, len(paths), 300)
	shapeNames := make([]string, 0, len(shapesOfValues))
	for s := range shapesOfValues {
		shapeNames = append(shapeNames, s)
	}
	sort.Strings(shapeNames)

	moved, checked := 0, 0
	for i, path := range paths {
		for _, shape := range shapeNames {
			for _, typ := range []string{"user.login", "future.family.thing"} {
				fields := map[string]any{"event": typ, "uid": fmt.Sprintf("u-%d-%s", i, shape), "time": "2025-01-02T03:04:05Z", "code": "TZZ00I"}
				withPath(fields, path, shapesOfValues[shape])
				e, err := teleporttest.NewEvent(fields)
				require.NoError(t, err)
				out := NewAuditMapper().Map(decoded(t, e), time.Now())
				require.Empty(t, es.refusal(out), "%s = %s (%s) in %s", path, shape, rawFieldTypes[path], typ)
				var doc map[string]any
				require.NoError(t, json.Unmarshal(encode(t, out), &doc))
				checked++
				if tp := doc["teleport"].(map[string]any); tp[MisfitsField] != nil {
					moved++
					require.Contains(t, doc["tags"], TagMisfit)
				}
			}
		}
	}
	require.Greater(t, moved, len(paths), "many shapes do not fit and were moved")
	t.Logf("%d field paths x %d shapes x 2 types: %d documents, all fit; %d with a value moved to teleport.misfits", len(paths), len(shapeNames), checked, moved)
}

// TestMisfitsKeepTheOriginalValue: a value that does not fit is moved to
// teleport.misfits under its path, unchanged, and counted.
func TestMisfitsKeepTheOriginalValue(t *testing.T) {
	m := NewAuditMapper()
	obj := map[string]any{"text": "hello", "n": map[string]any{"m": 1.0}}
	e, err := teleporttest.NewEvent(map[string]any{
		"event": "user.login", "uid": "u1", "time": "2025-01-02T03:04:05Z", "user": "alice",
		"message": obj, "ei": "not a number",
	})
	require.NoError(t, err)
	doc := document(t, m, e)
	tp := doc["teleport"].(map[string]any)
	require.Equal(t, map[string]any{"message": obj, "ei": "not a number"}, tp[MisfitsField])
	require.NotContains(t, tp["audit"], "message")
	require.Equal(t, "alice", tp["audit"].(map[string]any)["user"], "what fits stays")
	require.Contains(t, doc["tags"], TagMisfit)
	require.EqualValues(t, 1, m.Stats().Misfits)
}

// TestUnknownFieldsGoToUnmappedWhateverTheirShape: a field the template
// does not know goes to teleport.unmapped in every shape, so that an
// object in one event and a string in another (SCIM's PATCH "value" from
// two identity providers) are both stored, by any process, in any order.
func TestUnknownFieldsGoToUnmappedWhateverTheirShape(t *testing.T) {
	es := newESIndex(t)
	for i, v := range []any{map[string]any{"op": "add", "path": "members"}, "a value now", []any{map[string]any{"a": "b"}}, 12} {
		e, err := teleporttest.NewEvent(map[string]any{"event": "scim.resource.update", "uid": fmt.Sprintf("u%d", i), "time": "2025-01-02T03:04:05Z", "value": v})
		require.NoError(t, err)
		out := NewAuditMapper().Map(decoded(t, e), time.Now())
		require.Empty(t, es.refusal(out), "shape %d", i)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(encode(t, out), &doc))
		tp := doc["teleport"].(map[string]any)
		require.NotContains(t, tp["audit"], "value")
		want, _ := json.Marshal(v)
		got, _ := json.Marshal(tp[UnmappedField].(map[string]any)["value"])
		require.JSONEq(t, string(want), string(got))
		require.False(t, hasTag(out.Fields, TagMoved), "an unknown field is where it belongs")
	}
}

// TestUnknownTypesGetACategoryFromTheirCode: an event type of an unknown
// family gets event.category from its code's family.
func TestUnknownTypesGetACategoryFromTheirCode(t *testing.T) {
	m := NewAuditMapper()
	e, err := teleporttest.NewEvent(map[string]any{"event": "vectordb.session.query", "code": "TPG10I", "uid": "u1", "time": "2025-01-02T03:04:05Z"})
	require.NoError(t, err)
	doc := document(t, m, e)
	ev := doc["event"].(map[string]any)
	require.Equal(t, []any{"database"}, ev["category"])
	require.Equal(t, []any{"info"}, ev["type"])
	require.Equal(t, "success", ev["outcome"])
	_ = time.Now
}
