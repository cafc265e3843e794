package deadletter

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriterAppendsRecordsOfTheDay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), Dir)
	w := New(dir)
	w.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	path, err := w.Write("http", "uid-1", "receiver answered 400", []byte(`{"a":1}`))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "teleportbeat-2026-01-02.ndjson"), path)
	_, err = w.Write("elasticsearch", "uid-2", "413", []byte(`not json`))
	require.NoError(t, err)

	recs, err := Read(dir)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "uid-1", recs[0].EventID)
	require.JSONEq(t, `{"a":1}`, string(recs[0].Doc))
	require.JSONEq(t, `"not json"`, string(recs[1].Doc), "kept as a string")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
}
