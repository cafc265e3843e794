package rules

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/kibana"

	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/ruleschema"
)

func kibanaConn(t *testing.T, kb *estest.Kibana) *kibana.Client {
	t.Helper()
	srv := kb.Server()
	t.Cleanup(srv.Close)
	c, err := kibana.NewClientWithConfig(&kibana.ClientConfig{Host: srv.URL}, "teleportbeat", "0.1.0", "", "")
	require.NoError(t, err)
	return c
}

// withKibana is every rule, and a Kibana stand-in with a client to it.
func withKibana(t *testing.T) ([]Rule, *estest.Kibana, *kibana.Client) {
	t.Helper()
	rules, err := All()
	require.NoError(t, err)
	kb := estest.NewKibana()
	return rules, kb, kibanaConn(t, kb)
}

func install(t *testing.T, c *kibana.Client, rules []Rule, force bool) (Outcome, error) {
	t.Helper()
	h, err := LoadHistory()
	require.NoError(t, err)
	return Install(&c.Connection, c.Version.String(), rules, h, force)
}

// v1 are the rules as teleportbeat installed them before versions were
// kept: every rule at version 1, imported with overwrite.
func v1(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open("testdata/rules-v1.ndjson")
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &o))
		out = append(out, o)
	}
	return out
}

func byFile(t *testing.T, rules []Rule, file string) Rule {
	t.Helper()
	for _, r := range rules {
		if r.File == file {
			return r
		}
	}
	t.Fatalf("no rule %s", file)
	return Rule{}
}

func TestInstallLoadsEveryRuleDisabled(t *testing.T) {
	rules, kb, c := withKibana(t)
	out, err := install(t, c, rules, false)
	require.NoError(t, err)
	require.Len(t, out.Installed, len(rules))
	stored := kb.Rules()
	require.Len(t, stored, len(rules))
	for _, r := range rules {
		require.Equal(t, r.Name(), stored[r.ID()]["name"])
		require.Equal(t, false, stored[r.ID()]["enabled"], "installed disabled")
		require.EqualValues(t, r.Version(), stored[r.ID()]["version"])
	}
	imports := kb.RuleImports()
	require.Len(t, imports, 1)
	require.False(t, imports[0].Overwrite, "never overwrite: a rule that exists is the analyst's")

	// A second setup changes nothing.
	before := kb.Rules()
	out, err = install(t, c, rules, false)
	require.NoError(t, err)
	require.Len(t, out.UpToDate, len(rules))
	require.Empty(t, out.Installed)
	require.Empty(t, kb.RulePatches())
	require.Equal(t, before, kb.Rules())
}

// TestInstallKeepsTheAnalystsWork is Kibana's prebuilt rule upgrade, with
// teleportbeat's rules: the rules of the version before (version 1, as
// teleportbeat installed them), an analyst's work on them, then setup
// with this version's rules, twice.
func TestInstallKeepsTheAnalystsWork(t *testing.T) {
	rules, kb, c := withKibana(t)
	kb.Installed(v1(t)...)
	require.Len(t, kb.Rules(), 20)

	enabled := byFile(t, rules, "root-session.yml")     // enabled, with an exception list and an action
	tuned := byFile(t, rules, "bot-created.yml")        // its query tuned (this version did not change it)
	bothChanged := byFile(t, rules, "role-changed.yml") // query tuned; this version changed it too
	tagged := byFile(t, rules, "lock-created.yml")      // a tag added
	exceptions := []any{map[string]any{"id": "teleport-admins", "list_id": "teleport-admins", "namespace_type": "single", "type": "detection"}}
	kb.AddConnector("slack-soc", ".slack", "SOC channel")
	actions := []any{map[string]any{"group": "default", "id": "slack-soc", "action_type_id": ".slack", "params": map[string]any{"message": "{{context.rule.name}}"}, "frequency": map[string]any{"summary": true, "notifyWhen": "onActiveAlert", "throttle": nil}}}
	require.NoError(t, kb.Analyst(enabled.ID(), map[string]any{"enabled": true, "exceptions_list": exceptions, "actions": actions}))
	require.NoError(t, kb.Analyst(tuned.ID(), map[string]any{"enabled": true, "query": `event.action: "bot.create" and not user.name: "terraform"`}))
	require.NoError(t, kb.Analyst(bothChanged.ID(), map[string]any{"query": `event.action: ("role.created" or "role.updated" or "role.deleted") and not user.name: "system"`}))
	require.NoError(t, kb.Analyst(tagged.ID(), map[string]any{"tags": []any{"Data Source: Teleport", "Team: SOC-2"}}))

	out, err := install(t, c, rules, false)
	require.NoError(t, err)
	require.Len(t, out.Upgraded, 20, "every rule of version 1 upgraded")
	require.Len(t, out.Installed, len(rules)-20, "the new rules installed")
	stored := kb.Rules()
	for _, r := range rules {
		require.EqualValues(t, r.Version(), stored[r.ID()]["version"], r.File)
		require.Equal(t, "event.ingested", stored[r.ID()]["timestamp_override"], "%s: what the analyst did not change is upgraded", r.File)
		require.Equal(t, r.Object["from"], stored[r.ID()]["from"], r.File)
		require.Equal(t, r.Object["required_fields"], stored[r.ID()]["required_fields"], r.File)
	}
	e := stored[enabled.ID()]
	require.Equal(t, true, e["enabled"])
	require.Equal(t, exceptions, e["exceptions_list"])
	require.Equal(t, actions[0].(map[string]any)["id"], e["actions"].([]any)[0].(map[string]any)["id"])
	require.Equal(t, enabled.Object["query"], e["query"], "the new query: the analyst did not change it")

	require.Equal(t, `event.action: "bot.create" and not user.name: "terraform"`, stored[tuned.ID()]["query"], "the analyst's query kept")
	require.Equal(t, true, stored[tuned.ID()]["enabled"])
	require.Equal(t, []string{"query"}, out.Kept[tuned.Name()])
	require.Empty(t, out.Conflicts[tuned.Name()], "this version did not change that query")

	require.Contains(t, stored[bothChanged.ID()]["query"], `not user.name: "system"`, "the analyst's query kept")
	require.Equal(t, []string{"query"}, out.Conflicts[bothChanged.Name()], "both changed it: review")
	require.Equal(t, bothChanged.Object["description"], stored[bothChanged.ID()]["description"], "the rest upgraded")

	require.Equal(t, []any{"Data Source: Teleport", "Team: SOC-2"}, stored[tagged.ID()]["tags"])
	require.Contains(t, out.Kept[tagged.Name()], "tags")

	// No PATCH names enabled, exceptions or actions.
	for _, p := range kb.RulePatches() {
		for _, f := range []string{"enabled", "exceptions_list", "actions"} {
			require.NotContains(t, p.Fields, f, "rule %s", p.RuleID)
		}
	}

	// A second setup: everything at this version, nothing touched.
	before := kb.Rules()
	patches := len(kb.RulePatches())
	out, err = install(t, c, rules, false)
	require.NoError(t, err)
	require.Len(t, out.UpToDate, len(rules))
	require.Len(t, kb.RulePatches(), patches)
	require.Equal(t, before, kb.Rules())
}

// --force resets the content to this version's, and still keeps enabled,
// exceptions and actions.
func TestForceResetsTheContentAndKeepsTheState(t *testing.T) {
	rules, kb, c := withKibana(t)
	_, err := install(t, c, rules, false)
	require.NoError(t, err)
	r := byFile(t, rules, "bot-created.yml")
	require.NoError(t, kb.Analyst(r.ID(), map[string]any{"enabled": true, "query": `event.action: "bot.create" and not user.name: "terraform"`, "exceptions_list": []any{map[string]any{"id": "x", "list_id": "x", "namespace_type": "single", "type": "detection"}}}))

	out, err := install(t, c, rules, false)
	require.NoError(t, err)
	require.Contains(t, out.UpToDate, r.Name(), "same version: an analyst's edit is theirs")
	require.NotEqual(t, r.Object["query"], kb.Rules()[r.ID()]["query"])

	out, err = install(t, c, rules, true)
	require.NoError(t, err)
	require.Len(t, out.Reset, len(rules))
	got := kb.Rules()[r.ID()]
	require.Equal(t, r.Object["query"], got["query"])
	require.Equal(t, true, got["enabled"])
	require.Len(t, got["exceptions_list"], 1)
}

func TestANewerInstalledRuleIsLeftAlone(t *testing.T) {
	rules, kb, c := withKibana(t)
	_, err := install(t, c, rules, false)
	require.NoError(t, err)
	r := rules[0]
	require.NoError(t, kb.Analyst(r.ID(), map[string]any{"version": r.Version() + 1, "description": "from a newer teleportbeat"}))
	out, err := install(t, c, rules, false)
	require.NoError(t, err)
	require.Equal(t, []string{r.Name()}, out.Newer)
	require.Equal(t, "from a newer teleportbeat", kb.Rules()[r.ID()]["description"])
}

// Without the installed version's history, every field that differs from
// the shipped rule is taken as the analyst's.
func TestAnUnknownInstalledVersionKeepsWhatDiffers(t *testing.T) {
	r := Rule{File: "x.yml", Object: map[string]any{
		"rule_id": "9b8d1c55-2f0e-4d8b-a6a3-5f7c1e0b2a44", "name": "Teleport: x", "version": float64(3), "type": "query",
		"query": "event.action: a", "description": "new", "required_fields": []any{"new"},
	}}
	have := map[string]any{"rule_id": r.ID(), "version": float64(2), "query": "event.action: b", "description": "new", "required_fields": []any{"old"}}
	patch, kept, conflicts := upgradePatch(r.Object, have, History{}, r.ID(), 2)
	require.Equal(t, []string{"query"}, kept)
	require.Empty(t, conflicts)
	require.Equal(t, map[string]any{"required_fields": []any{"new"}, "name": "Teleport: x", "type": "query"}, patch,
		"the plumbing is always this version's; the query, which differs, is kept")
}

// The import API answers 200 when rules fail; setup must fail, naming
// each rule and Kibana's reason.
func TestInstallReportsEachRefusedRule(t *testing.T) {
	rules, err := All()
	require.NoError(t, err)
	kb := estest.NewKibana()
	kb.SetRuleError(rules[0].ID(), 400, "threshold: Invalid input")
	kb.SetRuleError(rules[3].ID(), 403, "missing privileges")
	out, err := install(t, kibanaConn(t, kb), rules, false)
	require.Len(t, out.Installed, len(rules)-2)
	require.NotContains(t, out.Installed, rules[0].Name())
	require.ErrorContains(t, err, fmt.Sprintf("Kibana imported %d of %d detection rules", len(rules)-2, len(rules)))
	require.ErrorContains(t, err, `rule "`+rules[0].Name()+`" (`+rules[0].ID()+`): 400 threshold: Invalid input`)
	require.ErrorContains(t, err, `rule "`+rules[3].Name()+`" (`+rules[3].ID()+`): 403 missing privileges`)
}

// The stand-in refuses what Elastic's schema for its version refuses: the
// rules install into the oldest and the newest Kibana the package claims,
// and a broken rule is refused with the schema's reason.
func TestInstallIntoEveryKibanaTheSchemasCover(t *testing.T) {
	rules, err := All()
	require.NoError(t, err)
	vs := ruleschema.Versions()
	for _, v := range []string{vs[0] + ".4", "8.14.0", vs[len(vs)-1] + ".1"} {
		kb := estest.NewKibana()
		kb.Version = v
		c := kibanaConn(t, kb)
		out, err := install(t, c, rules, false)
		require.NoError(t, err, "Kibana %s", v)
		require.Len(t, out.Installed, len(rules))
		for _, r := range rules {
			_, has := kb.Rules()[r.ID()]["investigation_fields"]
			require.Equal(t, v != vs[0]+".4", has, "Kibana %s: investigation_fields only from 8.14", v)
		}
	}
	broken := rules[0]
	broken.Object = maps.Clone(rules[0].Object)
	broken.Object["risk_score"] = 101
	kb := estest.NewKibana()
	kb.Version = "8.13.4"
	_, err = install(t, kibanaConn(t, kb), []Rule{broken}, false)
	require.ErrorContains(t, err, "risk_score")
	require.ErrorContains(t, err, "Kibana 8.13")
}

func TestInstallSaysWhatKibanaAnswered(t *testing.T) {
	rules, _, c := withKibana(t)
	c.Connection.URL += "/nothing-here"
	_, err := install(t, c, rules[:1], false)
	require.ErrorContains(t, err, "Security app")
	require.True(t, slices.ContainsFunc([]string{err.Error()}, func(s string) bool { return len(s) < 2000 }), "one line per rule, not a page dump")
}
