package rules

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/kibana"

	"github.com/teleportbeat/teleportbeat/internal/estest"
)

func kibanaConn(t *testing.T, kb *estest.Kibana) *kibana.Connection {
	t.Helper()
	srv := kb.Server()
	t.Cleanup(srv.Close)
	c, err := kibana.NewClientWithConfig(&kibana.ClientConfig{Host: srv.URL}, "teleportbeat", "0.1.0", "", "")
	require.NoError(t, err)
	return &c.Connection
}

func TestImportLoadsEveryRuleAndOverwrites(t *testing.T) {
	rules, err := All()
	require.NoError(t, err)
	kb := estest.NewKibana()
	conn := kibanaConn(t, kb)
	for range 2 { // an upgrade imports them again
		n, err := Import(conn, rules)
		require.NoError(t, err)
		require.Equal(t, len(rules), n)
	}
	stored := kb.Rules()
	require.Len(t, stored, len(rules))
	for _, r := range rules {
		require.Equal(t, r.Name(), stored[r.ID()]["name"])
	}
	for _, imp := range kb.RuleImports() {
		require.True(t, imp.Overwrite, "overwrite=true: a new version replaces the old")
	}
}

// The import API answers 200 when rules fail; setup must fail, naming
// each rule and Kibana's reason.
func TestImportReportsEachRefusedRule(t *testing.T) {
	rules, err := All()
	require.NoError(t, err)
	kb := estest.NewKibana()
	kb.SetRuleError(rules[0].ID(), 400, "threshold: Invalid input")
	kb.SetRuleError(rules[3].ID(), 403, "missing privileges")
	n, err := Import(kibanaConn(t, kb), rules)
	require.Equal(t, len(rules)-2, n)
	require.ErrorContains(t, err, fmt.Sprintf("Kibana imported %d of %d detection rules", len(rules)-2, len(rules)))
	require.ErrorContains(t, err, `rule "`+rules[0].Name()+`" (`+rules[0].ID()+`): 400 threshold: Invalid input`)
	require.ErrorContains(t, err, `rule "`+rules[3].Name()+`" (`+rules[3].ID()+`): 403 missing privileges`)
}

// The stand-in applies Kibana's schema checks, so the rules as rendered
// pass them (a rule Kibana would refuse fails here first).
func TestRenderedRulesPassKibanasChecks(t *testing.T) {
	rules, err := All()
	require.NoError(t, err)
	broken := rules[0]
	broken.Object = map[string]any{}
	for k, v := range rules[0].Object {
		broken.Object[k] = v
	}
	broken.Object["risk_score"] = 101
	kb := estest.NewKibana()
	_, err = Import(kibanaConn(t, kb), []Rule{broken})
	require.ErrorContains(t, err, "risk_score: Expected an integer between 0 and 100")
}
