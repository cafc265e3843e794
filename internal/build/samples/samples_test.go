package samples

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEmbeddedCorpusMatchesSharedTestdata checks that the embedded copy of
// the sample events is the workplace's, when that is present.
func TestEmbeddedCorpusMatchesSharedTestdata(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "..", "shared", "testdata", "teleport-events")
	if _, err := os.Stat(shared); err != nil {
		t.Skip("no shared testdata beside the repository")
	}
	for _, name := range CorpusFiles() {
		want, err := os.ReadFile(filepath.Join(shared, filepath.Base(name)))
		require.NoError(t, err)
		got, err := CorpusBytes(name)
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
}

// TestSamplesDecodeAsTeleportbeatReadsThem: every corpus event, and the
// generated ones (sessions included), become the events teleportbeat reads,
// with the uid as the key and Teleport's type and time.
func TestSamplesDecodeAsTeleportbeatReadsThem(t *testing.T) {
	fields, err := CorpusFields()
	require.NoError(t, err)
	require.Greater(t, len(fields), 100)
	corpus := len(fields)
	g := NewGenerator(5)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fields = append(fields, g.Fields(200, start, time.Second)...)
	sid, rec, up := g.Session(start, 20)
	fields = append(append(fields, rec...), up)
	for i, f := range fields {
		e, err := Decode(f)
		require.NoError(t, err, "%d", i)
		require.Equal(t, f["event"], e.Type, "%d", i)
		if uid, _ := f["uid"].(string); uid != "" {
			require.Equal(t, uid, e.Key(), "%d", i)
		}
	}
	require.Equal(t, sid, up["sid"])
	require.Len(t, rec, 20)
	require.Equal(t, "session.start", rec[0]["event"])
	require.Equal(t, "session.end", rec[19]["event"])

	again := NewGenerator(5).Fields(200, start, time.Second)
	require.Equal(t, fields[corpus:corpus+200], again, "deterministic for a seed")
}
