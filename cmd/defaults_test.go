package cmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/cfgfile"
	"github.com/elastic/elastic-agent-libs/config"

	"github.com/teleportbeat/teleportbeat/internal/geoip"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

func loadWithDefaults(t *testing.T, yml string) *config.C {
	t.Helper()
	path := filepath.Join(t.TempDir(), "teleportbeat.yml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	c, err := cfgfile.Load(path, Settings().ConfigOverrides)
	require.NoError(t, err)
	return c
}

func TestQueueSendsWithinASecondByDefault(t *testing.T) {
	c := loadWithDefaults(t, "output.console: {}\n")
	got, err := c.String("queue.mem.flush.timeout", -1)
	require.NoError(t, err)
	require.Equal(t, "1s", got)
}

func TestUserQueueSettingsWin(t *testing.T) {
	c := loadWithDefaults(t, "queue.mem:\n  events: 8000\n  flush.timeout: 7s\n")
	got, err := c.String("queue.mem.flush.timeout", -1)
	require.NoError(t, err)
	require.Equal(t, "7s", got)
	n, err := c.Int("queue.mem.events", -1)
	require.NoError(t, err)
	require.EqualValues(t, 8000, n)

	c = loadWithDefaults(t, "queue.mem.events: 8000\n")
	got, err = c.String("queue.mem.flush.timeout", -1)
	require.NoError(t, err)
	require.Equal(t, "1s", got, "the default fills in what the user left out")
}

func TestDiskQueueGetsNoMemorySettings(t *testing.T) {
	c := loadWithDefaults(t, "queue.disk:\n  max_size: 1GB\n")
	q, err := c.Child("queue", -1)
	require.NoError(t, err)
	require.False(t, q.HasField("mem"), "libbeat refuses two queue types")
	require.True(t, q.HasField("disk"))
}

func TestElasticsearchOutputUsesTheGeoIPPipelineByDefault(t *testing.T) {
	c := loadWithDefaults(t, "output.elasticsearch.hosts: [\"localhost:9200\"]\n")
	got, err := c.String("output.elasticsearch.pipeline", -1)
	require.NoError(t, err)
	require.Equal(t, geoip.Name(version.Version), got)

	c = loadWithDefaults(t, "output.elasticsearch:\n  hosts: [\"localhost:9200\"]\n  pipeline: \"\"\n")
	got, err = c.String("output.elasticsearch.pipeline", -1)
	require.NoError(t, err)
	require.Empty(t, got, "pipeline: \"\" ships without GeoIP")

	c = loadWithDefaults(t, "output.logstash.hosts: [\"localhost:5044\"]\n")
	out, err := c.Child("output", -1)
	require.NoError(t, err)
	require.Equal(t, []string{"logstash"}, out.GetFields(), "no second output")
}
