package tests

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/geoip"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

// TestGeoIPPipeline: the Elasticsearch output sends every event through
// teleportbeat's GeoIP pipeline by default and installs it when it is
// missing (the recording Elasticsearch refuses events naming a pipeline it
// does not have, as Elasticsearch does); `setup` loads it (plain and
// --pipelines); `pipeline: ""` ships without it.
func TestGeoIPPipeline(t *testing.T) {
	t.Parallel()
	name := geoip.Name(version.Version)
	want, err := json.Marshal(geoip.Pipeline(version.Version))
	require.NoError(t, err)
	samePipeline := func(t *testing.T, es *estest.Recorder) {
		t.Helper()
		got, ok := es.Pipeline(name)
		require.True(t, ok, "pipeline %s installed", name)
		require.JSONEq(t, string(want), string(got))
	}

	t.Run("run", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		evs := e.addGenerated(200)
		es, out := esSetup(t)
		p := e.start(e.config("teleportbeat.yml", out))
		waitFor(t, time.Minute, "every event", func() bool { return es.Count() >= len(expectedIDs(evs)) })
		p.stop()
		samePipeline(t, es)
		for _, d := range es.Docs() {
			require.Equal(t, name, d.Pipeline, "event %s goes through the GeoIP pipeline", d.ID)
		}
		_, _, rejected := es.Stats()
		require.Zero(t, rejected, "no event refused for a missing pipeline")
		require.Contains(t, p.logs.String(), "Loaded the GeoIP ingest pipeline the Elasticsearch output uses")
	})

	t.Run("opt-out", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		evs := e.addGenerated(50)
		es, out := esSetup(t)
		p := e.start(e.config("teleportbeat.yml", out+"  pipeline: \"\"\n"))
		waitFor(t, time.Minute, "every event", func() bool { return es.Count() >= len(expectedIDs(evs)) })
		p.stop()
		_, ok := es.Pipeline(name)
		require.False(t, ok, "nothing installed")
		for _, d := range es.Docs() {
			require.Empty(t, d.Pipeline)
		}
	})

	for _, args := range [][]string{{"setup"}, {"setup", "--pipelines"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			es, out := esSetup(t)
			kb := estest.NewKibana()
			kbSrv := kb.Server()
			t.Cleanup(kbSrv.Close)
			cfg := e.config("teleportbeat.yml", out+fmt.Sprintf("setup.kibana.host: %q\n", kbSrv.URL))
			all := append(args, "-c", cfg, "--path.home", e.dir, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs"))
			o, err := exec.Command(beatBin, all...).CombinedOutput()
			require.NoError(t, err, "%s", o)
			require.Contains(t, string(o), "Loaded Ingest pipelines")
			samePipeline(t, es)
		})
	}
}
