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

	"github.com/teleportbeat/teleportbeat/internal/build/kibana"
	"github.com/teleportbeat/teleportbeat/internal/geoip"
	"github.com/teleportbeat/teleportbeat/internal/rules"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
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
	require.Contains(t, out, fmt.Sprintf("Detection rules installed, disabled (enable them in Kibana under Security → Rules, tag \"Data Source: Teleport\"): %d (", len(ruleSet)))
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
	require.Equal(t, 3, byType["dashboard"])

	// Each flag alone does its half only.
	kbBefore, esBefore := kb.Imports(), len(es.Requests())
	out = run("setup", "--index-management")
	require.Contains(t, out, "Index setup finished")
	require.NotContains(t, out, "Loaded dashboards")
	require.Equal(t, kbBefore, kb.Imports(), "--index-management loads no dashboards")
	require.Greater(t, len(es.Requests()), esBefore)
	require.Len(t, kb.RuleImports(), 1, "--index-management loads no rules")

	// --detection-rules alone: the rules, nothing else; around an
	// analyst's work on them, which it keeps.
	tuned := ruleSet[0]
	exceptions := []any{map[string]any{"id": "soc-allow", "list_id": "soc-allow", "namespace_type": "single", "type": "detection"}}
	require.NoError(t, kb.Analyst(tuned.ID(), map[string]any{"enabled": true, "exceptions_list": exceptions, "query": tuned.Object["query"].(string) + ` and not user.name: "svc-deploy"`}))
	require.NoError(t, kb.Analyst(ruleSet[1].ID(), map[string]any{"enabled": true}))
	before := kb.Rules()
	kbBefore, esBefore = kb.Imports(), len(es.Requests())
	out = run("setup", "--detection-rules")
	require.Contains(t, out, fmt.Sprintf("Detection rules already at this version: %d", len(ruleSet)))
	require.NotContains(t, out, "Index setup finished")
	require.Equal(t, kbBefore, kb.Imports(), "no dashboards")
	require.Equal(t, esBefore, len(es.Requests()), "nothing in Elasticsearch")
	require.Len(t, kb.RuleImports(), 1, "nothing to import")
	require.Empty(t, kb.RulePatches(), "nothing to upgrade")
	require.Equal(t, before, kb.Rules(), "the analyst's work is intact")

	// --force: this version's content again, enabled and exceptions kept.
	out = run("setup", "--detection-rules", "--force")
	require.Contains(t, out, fmt.Sprintf("Detection rules reset to this version (--force): %d", len(ruleSet)))
	got := kb.Rules()[tuned.ID()]
	require.Equal(t, tuned.Object["query"], got["query"])
	require.Equal(t, true, got["enabled"])
	require.Equal(t, exceptions, got["exceptions_list"])

	// Kibana refusing a rule (it answers 200 all the same) fails setup,
	// naming the rule and the reason.
	kb.DeleteRule(ruleSet[2].ID())
	kb.SetRuleError(ruleSet[2].ID(), 400, "query: invalid KQL")
	cmd := exec.Command(beatBin, "setup", "--detection-rules", "-c", cfg, "--path.home", repoRoot, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs"))
	failed, err := cmd.CombinedOutput()
	require.Error(t, err, "%s", failed)
	require.Contains(t, string(failed), "Kibana imported 0 of 1 detection rules")
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

// TestSetupUpgradesTheRulesKeepingTheAnalystsWork: a Kibana with the rules
// of the version before (all at version 1, as teleportbeat installed them),
// an analyst's work on them, then `teleportbeat setup --detection-rules`
// of this version, as an upgrade runs it: the rules are upgraded, the new
// ones installed, and what the analyst did is still there; a second setup
// changes nothing.
func TestSetupUpgradesTheRulesKeepingTheAnalystsWork(t *testing.T) {
	e := newEnv(t)
	kb := estest.NewKibana()
	kb.Version = "8.13.4" // the oldest Kibana the package claims
	kbSrv := kb.Server()
	defer kbSrv.Close()
	b, err := os.ReadFile(filepath.Join(repoRoot, "internal", "rules", "testdata", "rules-v1.ndjson"))
	require.NoError(t, err)
	var old []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var o map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &o))
		old = append(old, o)
	}
	kb.Installed(old...)
	ruleSet, err := rules.All()
	require.NoError(t, err)
	var roles, bots rules.Rule
	for _, r := range ruleSet {
		switch r.File {
		case "role-changed.yml":
			roles = r
		case "bot-created.yml":
			bots = r
		}
	}
	kb.AddConnector("pagerduty", ".pagerduty", "On call")
	actions := []any{map[string]any{"group": "default", "id": "pagerduty", "action_type_id": ".pagerduty", "params": map[string]any{"summary": "{{context.rule.name}}"}}}
	require.NoError(t, kb.Analyst(roles.ID(), map[string]any{"enabled": true, "actions": actions}))
	require.NoError(t, kb.Analyst(bots.ID(), map[string]any{"enabled": true, "query": `event.action: "bot.create" and not user.name: "terraform"`}))

	cfg := e.config("teleportbeat.yml", fmt.Sprintf("setup.kibana.host: %q\n", kbSrv.URL))
	setup := func() string {
		t.Helper()
		out, err := exec.Command(beatBin, "setup", "--detection-rules", "-c", cfg, "--path.home", repoRoot, "--path.data", filepath.Join(e.dir, "data"), "--path.logs", filepath.Join(e.dir, "logs")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	out := setup()
	require.Contains(t, out, fmt.Sprintf("Detection rules upgraded to this version: %d (", len(old)))
	require.Contains(t, out, fmt.Sprintf("Detection rules installed, disabled (enable them in Kibana under Security → Rules, tag \"Data Source: Teleport\"): %d (", len(ruleSet)-len(old)))
	require.Contains(t, out, `Kept your changes to "Teleport: Machine ID bot created": query`)
	stored := kb.Rules()
	require.Len(t, stored, len(ruleSet))
	r := stored[roles.ID()]
	require.Equal(t, true, r["enabled"])
	require.Equal(t, "pagerduty", r["actions"].([]any)[0].(map[string]any)["id"])
	require.Equal(t, roles.Object["query"], r["query"], "the new query: Teleport's own preset role rewrites no longer alert")
	require.Equal(t, "event.ingested", r["timestamp_override"])
	require.NotContains(t, r, "investigation_fields", "Kibana 8.13 is not sent what it does not take")
	require.Equal(t, `event.action: "bot.create" and not user.name: "terraform"`, stored[bots.ID()]["query"])
	require.Equal(t, true, stored[bots.ID()]["enabled"])
	for _, rule := range ruleSet {
		require.EqualValues(t, rule.Version(), stored[rule.ID()]["version"], rule.File)
	}

	before := kb.Rules()
	out = setup()
	require.Contains(t, out, fmt.Sprintf("Detection rules already at this version: %d", len(ruleSet)))
	require.Equal(t, before, kb.Rules())
}
