package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/estest"
	"github.com/teleportbeat/teleportbeat/internal/geoip"
	"github.com/teleportbeat/teleportbeat/internal/kibana"
	"github.com/teleportbeat/teleportbeat/internal/rules"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

// TestSetupLoadsTemplateLifecycleAndDashboards: `teleportbeat setup`
// against the Elasticsearch and Kibana stand-ins sends the index template,
// the lifecycle policy, the data stream, the GeoIP pipeline, the dashboards
// and the detection rules; each flag does its part only; `export template`
// and `export dashboard` work.
func TestSetupLoadsTemplateLifecycleAndDashboards(t *testing.T) {
	e := newEnv(t)
	es := estest.New()
	esSrv := es.Server()
	defer esSrv.Close()
	kb := estest.NewKibana()
	kbSrv := kb.Server()
	defer kbSrv.Close()
	cfg := e.config("teleportbeat.yml", fmt.Sprintf("output.elasticsearch.hosts: [%q]\nsetup.kibana.host: %q\n", esSrv.URL, kbSrv.URL))
	runIn := func(home string, args ...string) string {
		t.Helper()
		all := append(args, "-c", cfg, "--path.home", home, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs"))
		out, err := exec.Command(beatBin, all...).CombinedOutput()
		require.NoError(t, err, "teleportbeat %v:\n%s", args, out)
		return string(out)
	}
	run := func(args ...string) string { t.Helper(); return runIn(repoRoot, args...) }

	// As README and the packages' docs say: plain `setup`, no flags:
	// template, lifecycle, data stream, GeoIP pipeline, dashboards and
	// detection rules in one command.
	ruleSet, err := rules.All()
	require.NoError(t, err)
	out := run("setup")
	require.Contains(t, out, "Index setup finished")
	require.Contains(t, out, "Loaded dashboards")
	require.Contains(t, out, "Loaded Ingest pipelines")
	require.Contains(t, out, fmt.Sprintf("Loaded %d detection rules", len(ruleSet)))
	_, ok := es.Pipeline(geoip.Name(version.Version))
	require.True(t, ok, "the GeoIP pipeline")
	require.Len(t, kb.Rules(), len(ruleSet), "every detection rule")
	require.Len(t, kb.RuleImports(), 1)

	var template, policy, stream bool
	for _, r := range es.Requests() {
		switch {
		case r.Method == "PUT" && r.Path == "/_index_template/teleportbeat-"+version.Version:
			template = true
			var body map[string]any
			require.NoError(t, json.Unmarshal(r.Body, &body))
			props := body["template"].(map[string]any)["mappings"].(map[string]any)["properties"].(map[string]any)
			audit := props["teleport"].(map[string]any)["properties"].(map[string]any)["audit"].(map[string]any)["properties"].(map[string]any)
			require.Equal(t, "date", audit["time"].(map[string]any)["type"])
			require.Equal(t, "ip", audit["src_addr"].(map[string]any)["type"])
			require.Equal(t, "flattened", audit["server_labels"].(map[string]any)["type"])
			require.Equal(t, []any{"teleportbeat-" + version.Version}, body["index_patterns"], "the data stream")
		case r.Method == "PUT" && r.Path == "/_ilm/policy/teleportbeat":
			policy = true
		case r.Method == "PUT" && r.Path == "/_data_stream/teleportbeat-"+version.Version:
			stream = true
		}
	}
	require.True(t, template, "index template installed")
	require.True(t, policy, "lifecycle policy installed")
	require.True(t, stream, "data stream created")

	byType := map[string]int{}
	ids := map[string]bool{}
	for _, o := range kb.Objects() {
		byType[o["type"].(string)]++
		ids[o["id"].(string)] = true
	}
	require.True(t, ids[kibana.IndexPattern], "the data view of the data stream: %v", ids)
	for _, o := range kibana.Objects() {
		require.True(t, ids[o.ID], "%s %q loaded", o.Type, o.Attributes["title"])
	}
	require.Equal(t, 2, byType["dashboard"])

	// Each flag alone does its half only.
	kbBefore, esBefore := kb.Imports(), len(es.Requests())
	out = run("setup", "--index-management")
	require.Contains(t, out, "Index setup finished")
	require.NotContains(t, out, "Loaded dashboards")
	require.Equal(t, kbBefore, kb.Imports(), "--index-management loads no dashboards")
	require.Greater(t, len(es.Requests()), esBefore)
	require.Len(t, kb.RuleImports(), 1, "--index-management loads no rules")

	// --detection-rules alone: the rules, nothing else.
	kbBefore, esBefore = kb.Imports(), len(es.Requests())
	out = run("setup", "--detection-rules")
	require.Contains(t, out, fmt.Sprintf("Loaded %d detection rules", len(ruleSet)))
	require.NotContains(t, out, "Index setup finished")
	require.Equal(t, kbBefore, kb.Imports(), "no dashboards")
	require.Equal(t, esBefore, len(es.Requests()), "nothing in Elasticsearch")
	require.Len(t, kb.RuleImports(), 2)
	require.True(t, kb.RuleImports()[1].Overwrite, "a new version replaces the old")

	// Kibana refusing a rule (it answers 200 all the same) fails setup,
	// naming the rule and the reason.
	kb.SetRuleError(ruleSet[2].ID(), 400, "query: invalid KQL")
	cmd := exec.Command(beatBin, "setup", "--detection-rules", "-c", cfg, "--path.home", repoRoot, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs"))
	failed, err := cmd.CombinedOutput()
	require.Error(t, err, "%s", failed)
	require.Contains(t, string(failed), fmt.Sprintf("Kibana imported %d of %d detection rules", len(ruleSet)-1, len(ruleSet)))
	require.Contains(t, string(failed), fmt.Sprintf("rule %q (%s): 400 query: invalid KQL", ruleSet[2].Name(), ruleSet[2].ID()))

	// From a directory without kibana/ (a binary copied alone, or run
	// from elsewhere): the dashboards carried in the binary are loaded.
	esBefore = len(es.Requests())
	out = runIn(t.TempDir(), "setup", "--dashboards")
	require.Contains(t, out, "Loaded dashboards")
	require.NotContains(t, out, "Skipping loading dashboards")
	require.Greater(t, kb.Imports(), kbBefore)
	require.Equal(t, esBefore, len(es.Requests()), "--dashboards installs no template")

	tmpl := run("export", "template")
	require.Contains(t, tmpl, `"teleport"`)
	require.Contains(t, tmpl, `"src_addr"`)

	var overview string
	for _, o := range kibana.Objects() {
		if o.Type == "dashboard" && strings.Contains(o.Attributes["title"].(string), "Overview") {
			overview = o.ID
		}
	}
	folder := filepath.Join(e.dir, "export")
	run("export", "dashboard", "--id", overview, "--folder", folder)
	var exported []string
	require.NoError(t, filepath.Walk(folder, func(path string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		if !info.IsDir() {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			exported = append(exported, string(b))
		}
		return nil
	}))
	all := strings.Join(exported, "\n")
	require.Contains(t, all, overview)
	require.Contains(t, all, "Events over time by type", "the dashboard's visualizations are exported with it")
}
