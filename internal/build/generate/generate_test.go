package generate

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesAreCurrent fails when fields.yml, include/fields.go or
// the config files differ from what `go tool mage update` writes.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	stale, err := Stale("../../..")
	require.NoError(t, err)
	require.Empty(t, stale, "stale generated files: run `go tool mage update` and commit")
}

func TestConfigsCarryTeleportbeatSettings(t *testing.T) {
	beats, err := BeatsDir("../../..")
	require.NoError(t, err)
	ref, err := Config("../../..", beats, true)
	require.NoError(t, err)
	for _, key := range []string{"teleportbeat.teleport:", "#identity_file:", "#batch_size: 500", "#safety_margin: 0s", "#max_delay: 15m", "#recovery_horizon: 24h", "teleportbeat.registry:", "output.logstash:", "output.elasticsearch:"} {
		require.Contains(t, string(ref), key)
	}
	short, err := Config("../../..", beats, false)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(short), "# ================================ Teleportbeat"))
}
