package input

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
	conf "github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestFactoryRunsSeveralUnits: a Teleport integration per cluster in a
// policy: units run at once (their clusters share the registry), a unit
// id that runs already is refused, and a stopped unit can be started
// again (a policy change replaces it).
func TestFactoryRunsSeveralUnits(t *testing.T) {
	tp, idFile := teleporttest.StartWithIdentity(t, t.TempDir())
	unit := func(id string) *conf.C {
		c, err := conf.NewConfigFrom(map[string]any{
			"id":           id,
			"teleportbeat": map[string]any{"teleport": map[string]any{"addr": []string{tp.Addr()}, "identity_file": idFile}},
		})
		require.NoError(t, err)
		return c
	}
	f := &Factory{Log: logptest.NewTestingLogger(t, ""), Info: beat.Info{Beat: "teleportbeat"}, Resolve: func(p string) string { return filepath.Join(t.TempDir(), p) }}

	first, err := f.Create(nil, unit("unit-a"))
	require.NoError(t, err)
	second, err := f.Create(nil, unit("unit-b"))
	require.NoError(t, err, "a second cluster's unit runs beside the first")
	require.Equal(t, "teleport input unit unit-b", second.(*Runner).String())
	_, err = f.Create(nil, unit("unit-a"))
	require.ErrorContains(t, err, "teleport input unit unit-a already runs in this teleportbeat")
	first.Stop()
	again, err := f.Create(nil, unit("unit-a"))
	require.NoError(t, err, "once stopped, the unit can run again")
	again.Stop()
	second.Stop()

	bad, err := conf.NewConfigFrom(map[string]any{"id": "unit-c", "teleportbeat": map[string]any{"teleport": map[string]any{}}})
	require.NoError(t, err)
	require.ErrorContains(t, f.CheckConfig(bad), "teleport input unit unit-c: teleportbeat.teleport.addr: is required")
}
