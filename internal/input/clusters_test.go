package input

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAClusterIsClaimedByOneEntry: the first entry to connect to a
// cluster reads it; another entry that reaches the same cluster is told
// which entry has it; an entry claiming again (a reconnect) is fine.
func TestAClusterIsClaimedByOneEntry(t *testing.T) {
	c := &claims{by: map[string]string{}}
	require.NoError(t, c.claim("root.example.com", "teleportbeat.clusters.0 (a:443)"))
	require.NoError(t, c.claim("leaf-eu", "teleportbeat.clusters.1 (b:3025)"))
	require.NoError(t, c.claim("root.example.com", "teleportbeat.clusters.0 (a:443)"))
	err := c.claim("root.example.com", "teleportbeat.clusters.2 (a2:443)")
	require.ErrorContains(t, err, `teleportbeat.clusters.2 (a2:443) is Teleport cluster "root.example.com", which teleportbeat.clusters.0 (a:443) reads already`)
}
