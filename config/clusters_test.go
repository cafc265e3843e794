package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	conf "github.com/elastic/elastic-agent-libs/config"
)

// TestClustersTakeTheSectionsSettingsAndTheirOwn: each entry of
// teleportbeat.clusters is a whole configuration, its own settings over
// the section's (lists replaced, not merged); the one-cluster form is a
// list of one.
func TestClustersTakeTheSectionsSettingsAndTheirOwn(t *testing.T) {
	root, leaf := writeCreds(t), writeCreds(t)
	c, err := conf.NewConfigWithYAML([]byte(`
audit.batch_size: 1000
audit.exclude_event_types: [session.data, app.session.chunk]
registry.flush: 2s
clusters:
  - teleport.addr: ["root.example.com:443"]
    teleport.identity_file: `+root.identity+`
  - teleport.addr: ["leaf-eu.example.com:3025"]
    teleport.identity_file: `+leaf.identity+`
    audit.exclude_event_types: [session.data]
    sessions.enabled: true
`), "test")
	require.NoError(t, err)
	cfg, err := Load(c)
	require.NoError(t, err)
	cs := cfg.Clusters()
	require.Len(t, cs, 2)
	require.Equal(t, []string{"root.example.com:443"}, cs[0].Teleport.Addr)
	require.Equal(t, []string{"leaf-eu.example.com:3025"}, cs[1].Teleport.Addr)
	require.Equal(t, 1000, cs[0].Audit.BatchSize, "the section's settings")
	require.Equal(t, 1000, cs[1].Audit.BatchSize)
	require.Equal(t, 2*time.Second, cs[1].Registry.Flush)
	require.Equal(t, []string{"session.data", "app.session.chunk"}, cs[0].Audit.ExcludeEventTypes)
	require.Equal(t, []string{"session.data"}, cs[1].Audit.ExcludeEventTypes, "an entry's list replaces the section's")
	require.False(t, cs[0].Sessions.Enabled)
	require.True(t, cs[1].Sessions.Enabled)
	require.Equal(t, "teleportbeat.clusters.1", cs[1].Key())
	require.Equal(t, 5*time.Second, cs[0].Audit.PollInterval, "defaults still apply")

	one, err := load(t, map[string]any{"teleport": map[string]any{"addr": "a:443", "identity_file": root.identity}})
	require.NoError(t, err)
	require.Len(t, one.Clusters(), 1)
	require.Equal(t, "", one.Clusters()[0].Key())
}

// TestClusterErrorsNameTheEntry: an entry's problems are said with the
// entry's keys; an unknown key in an entry, an empty list and one address
// in two entries are refused.
func TestClusterErrorsNameTheEntry(t *testing.T) {
	cr := writeCreds(t)
	for name, tc := range map[string]struct{ yaml, want string }{
		"missing addr": {`clusters:
  - teleport.addr: ["a.example.com:443"]
    teleport.identity_file: ` + cr.identity + `
  - teleport.identity_file: ` + cr.identity + `
`, "teleportbeat.clusters.1.teleport.addr"},
		"bad batch size": {`clusters:
  - teleport.addr: ["a.example.com:443"]
    teleport.identity_file: ` + cr.identity + `
    audit.batch_size: 20000
`, "teleportbeat.clusters.0.audit.batch_size"},
		"unknown key": {`clusters:
  - teleport.addr: ["a.example.com:443"]
    teleport.identity_file: ` + cr.identity + `
    registry.path: elsewhere
`, "teleportbeat.clusters.0.registry.path: unknown setting"},
		"empty": {`clusters: []
`, "teleportbeat.clusters: is empty"},
		"copied entry": {`clusters:
  - teleport.addr: ["a.example.com:443"]
    teleport.identity_file: ` + cr.identity + `
  - teleport.addr: ["b.example.com:443", "a.example.com:443"]
    teleport.identity_file: ` + cr.identity + `
`, "teleportbeat.clusters.1.teleport.addr: a.example.com:443 is also in teleportbeat.clusters.0.teleport.addr"},
	} {
		c, err := conf.NewConfigWithYAML([]byte(tc.yaml), "test")
		require.NoError(t, err, name)
		_, err = Load(c)
		require.ErrorContains(t, err, tc.want, name)
	}
}
