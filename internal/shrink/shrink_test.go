package shrink

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDocumentTruncatesTheLargestStringsUnderTheLimit(t *testing.T) {
	doc := map[string]any{
		"@timestamp": "2025-01-01T00:00:00Z",
		"event":      map[string]any{"id": "uid-1", "action": "db.session.query"},
		"teleport": map[string]any{"audit": map[string]any{
			"db_query":      strings.Repeat("SELECT é ", 200_000), // about 2 MB
			"db_query_args": []any{strings.Repeat("x", 300_000), "small"},
			"user":          "alice",
		}},
		"tags": []any{"existing"},
	}
	res, ok := Document(doc, 512<<10)
	require.True(t, ok)
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), 512<<10)
	require.Equal(t, len(b), res.Bytes)
	require.Greater(t, res.OriginalBytes, 2_000_000)
	require.Contains(t, res.Fields, "teleport.audit.db_query")
	audit := doc["teleport"].(map[string]any)["audit"].(map[string]any)
	require.Equal(t, "alice", audit["user"], "small fields stay")
	q := audit["db_query"].(string)
	require.Contains(t, q, "[truncated by teleportbeat: ")
	require.True(t, strings.HasPrefix(q, "SELECT é SELECT"))
	require.True(t, json.Valid([]byte(`"`+strings.ReplaceAll(q, `"`, ``)+`"`)), "cut on a rune boundary")
	require.Equal(t, []any{"existing", Tag}, doc["tags"])
	tr := doc["teleport"].(map[string]any)["truncated"].(map[string]any)
	require.EqualValues(t, res.OriginalBytes, tr["original_bytes"])

	// Cut again (a receiver that still refuses): the first size is kept.
	b, err = json.Marshal(doc)
	require.NoError(t, err)
	var again map[string]any
	require.NoError(t, json.Unmarshal(b, &again))
	_, ok = Document(again, 128<<10)
	require.True(t, ok)
	require.EqualValues(t, res.OriginalBytes, again["teleport"].(map[string]any)["truncated"].(map[string]any)["original_bytes"])
	require.Equal(t, "uid-1", doc["event"].(map[string]any)["id"], "the identity is never cut")
}

func TestDocumentReportsWhatStringsCannotFix(t *testing.T) {
	many := make([]any, 50_000)
	for i := range many {
		many[i] = i
	}
	doc := map[string]any{"teleport": map[string]any{"audit": map[string]any{"numbers": many}}}
	_, ok := Document(doc, 10<<10)
	require.False(t, ok)
}
