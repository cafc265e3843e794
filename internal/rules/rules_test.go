package rules

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/mapstr"

	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/fieldsyml"
	"github.com/teleportbeat/teleportbeat/internal/kql"
	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

func loadAll(t *testing.T) ([]Rule, kql.Types) {
	t.Helper()
	rules, err := All()
	require.NoError(t, err)
	types, err := fieldsyml.Types("../../fields.yml")
	require.NoError(t, err)
	return rules, kql.Types(types)
}

// MITRE ATT&CK (Enterprise) tactics the rules may name.
var tactics = map[string]string{
	"TA0001": "Initial Access", "TA0002": "Execution", "TA0003": "Persistence", "TA0004": "Privilege Escalation",
	"TA0005": "Defense Evasion", "TA0006": "Credential Access", "TA0007": "Discovery", "TA0008": "Lateral Movement",
	"TA0009": "Collection", "TA0010": "Exfiltration", "TA0011": "Command and Control", "TA0040": "Impact",
}

// Elastic's bands: the risk score a severity goes with.
var riskBands = map[string][2]float64{"low": {0, 21}, "medium": {22, 47}, "high": {48, 73}, "critical": {74, 100}}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	techniqueRE = regexp.MustCompile(`^T\d{4}$`)
	subRE       = regexp.MustCompile(`^(T\d{4})\.(\d{3})$`)
)

// requiredFields is what a rule's required_fields must say: every field
// its query and threshold name, with the type of the index template.
func requiredFields(t *testing.T, r Rule, types kql.Types) []any {
	q, err := kql.Parse(r.Object["query"].(string), types)
	require.NoError(t, err, r.File)
	names := q.Fields()
	if th, ok := r.Object["threshold"].(map[string]any); ok {
		for _, f := range th["field"].([]any) {
			names = append(names, f.(string))
		}
	}
	sort.Strings(names)
	var out []any
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, map[string]any{"name": n, "type": types[n]})
		}
	}
	return out
}

func TestRuleSchema(t *testing.T) {
	rules, types := loadAll(t)
	require.GreaterOrEqual(t, len(rules), 12)
	ids, names := map[string]string{}, map[string]string{}
	for _, r := range rules {
		o := r.Object
		t.Run(r.File, func(t *testing.T) {
			require.Regexp(t, uuidRE, r.ID(), "a UUID v4 rule_id of our own")
			require.Empty(t, ids[r.ID()], "rule_id shared with %s", ids[r.ID()])
			ids[r.ID()] = r.File
			require.True(t, strings.HasPrefix(r.Name(), "Teleport: "))
			require.Empty(t, names[r.Name()], "name shared with %s", names[r.Name()])
			names[r.Name()] = r.File
			for _, f := range []string{"description", "note", "query"} {
				require.NotEmpty(t, o[f], f)
			}
			require.NotEmpty(t, o["false_positives"])
			require.Contains(t, []any{"query", "threshold"}, o["type"])
			require.Equal(t, "kuery", o["language"])
			require.ElementsMatch(t, []any{"teleportbeat-*", "logs-teleportbeat.audit-*"}, o["index"])
			band, ok := riskBands[o["severity"].(string)]
			require.True(t, ok, "severity %v", o["severity"])
			risk := o["risk_score"].(float64)
			require.True(t, risk >= band[0] && risk <= band[1], "risk_score %v out of the %v band %v", risk, o["severity"], band)
			if o["type"] == "threshold" {
				th := o["threshold"].(map[string]any)
				require.NotEmpty(t, th["field"])
				require.GreaterOrEqual(t, th["value"].(float64), 2.0)
			}

			threat := o["threat"].([]any)
			require.NotEmpty(t, threat)
			for _, th := range threat {
				th := th.(map[string]any)
				require.Equal(t, "MITRE ATT&CK", th["framework"])
				tac := th["tactic"].(map[string]any)
				require.Equal(t, tactics[tac["id"].(string)], tac["name"], "tactic %v", tac["id"])
				require.Equal(t, fmt.Sprintf("https://attack.mitre.org/tactics/%s/", tac["id"]), tac["reference"])
				techs := th["technique"].([]any)
				require.NotEmpty(t, techs)
				for _, te := range techs {
					te := te.(map[string]any)
					id := te["id"].(string)
					require.Regexp(t, techniqueRE, id)
					require.NotEmpty(t, te["name"])
					require.Equal(t, fmt.Sprintf("https://attack.mitre.org/techniques/%s/", id), te["reference"])
					subs, _ := te["subtechnique"].([]any)
					for _, s := range subs {
						s := s.(map[string]any)
						m := subRE.FindStringSubmatch(s["id"].(string))
						require.NotNil(t, m, "subtechnique id %v", s["id"])
						require.Equal(t, id, m[1], "a subtechnique of its technique")
						require.Equal(t, fmt.Sprintf("https://attack.mitre.org/techniques/%s/%s/", m[1], m[2]), s["reference"])
					}
				}
			}

			// Every field exists in the template with the type the rule
			// says it has (kql.Parse checks the query against the types).
			require.Equal(t, requiredFields(t, r, types), o["required_fields"], "required_fields")
		})
	}
}

// documents maps fixtures the way teleportbeat maps Teleport's events:
// each gets a uid and a time 10 s after the one before; an identity's
// "+<duration>" expiry is relative to the event's time.
func documents(t *testing.T, fixtures []Fixture) []map[string]any {
	t.Helper()
	m := ecs.NewAuditMapper()
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var docs []map[string]any
	n := 0
	for _, f := range fixtures {
		for range max(1, f.Repeat) {
			at := start.Add(time.Duration(n) * 10 * time.Second)
			raw := map[string]any{"uid": fmt.Sprintf("00000000-0000-4000-8000-%012d", n), "time": at.Format(time.RFC3339Nano)}
			for k, v := range f.Event {
				raw[k] = v
			}
			if id, ok := raw["identity"].(map[string]any); ok {
				if exp, ok := id["expires"].(string); ok && strings.HasPrefix(exp, "+") {
					d, err := time.ParseDuration(exp[1:])
					require.NoError(t, err)
					cp := map[string]any{}
					for k, v := range id {
						cp[k] = v
					}
					cp["expires"] = at.Add(d).Format(time.RFC3339Nano)
					raw["identity"] = cp
				}
			}
			te, err := teleporttest.NewEvent(raw)
			require.NoError(t, err)
			ev, err := te.Decoded()
			require.NoError(t, err)
			out := m.Map(ev, time.Now())
			doc := mapstr.M(out.Fields.Clone())
			doc["@timestamp"] = out.Timestamp
			docs = append(docs, doc)
			n++
		}
	}
	return docs
}

// alerts evaluates a rule over documents seen together, as the detection
// engine does in one run: a query rule alerts on each matching document,
// a threshold rule on each group (by its fields; documents without them
// are not counted) of at least its value.
func alerts(r Rule, q *kql.Query, docs []map[string]any) int {
	th, ok := r.Object["threshold"].(map[string]any)
	if !ok {
		n := 0
		for _, d := range docs {
			if q.Match(d) {
				n++
			}
		}
		return n
	}
	var fields []string
	for _, f := range th["field"].([]any) {
		fields = append(fields, f.(string))
	}
	groups := map[string]int{}
	for _, d := range docs {
		if !q.Match(d) {
			continue
		}
		key := ""
		complete := true
		for _, f := range fields {
			v, err := mapstr.M(d).GetValue(f)
			if err != nil {
				complete = false
				break
			}
			key += fmt.Sprint(v) + "\x00"
		}
		if complete {
			groups[key]++
		}
	}
	n := 0
	for _, c := range groups {
		if float64(c) >= th["value"].(float64) {
			n++
		}
	}
	return n
}

// TestRulesFireOnTheirEventsOnly evaluates every rule's query over the
// documents the mapper builds from its fixtures: each hit raises an
// alert, no near miss does.
func TestRulesFireOnTheirEventsOnly(t *testing.T) {
	rules, types := loadAll(t)
	for _, r := range rules {
		t.Run(r.File, func(t *testing.T) {
			q, err := kql.Parse(r.Object["query"].(string), types)
			require.NoError(t, err)
			require.NotEmpty(t, r.Tests.Hit, "a hit")
			require.NotEmpty(t, r.Tests.Miss, "a near miss")
			hits, misses := documents(t, r.Tests.Hit), documents(t, r.Tests.Miss)
			if _, threshold := r.Object["threshold"]; threshold {
				require.Equal(t, 1, alerts(r, q, hits), "the hit events together raise one alert")
				require.Zero(t, alerts(r, q, misses), "the near misses together raise none")
				return
			}
			for i, d := range hits {
				require.True(t, q.Match(d), "hit %d does not match: %v", i, d)
			}
			for i, d := range misses {
				require.False(t, q.Match(d), "miss %d matches: %v", i, d)
			}
		})
	}
}

// A rule that compares a boolean with a string, or names a field teleportbeat
// does not write, cannot pass the tests above.
func TestBrokenRulesFail(t *testing.T) {
	_, types := loadAll(t)
	_, err := kql.Parse(`event.action: "user.login" and teleport.audit.success: "true"`, types)
	require.ErrorContains(t, err, "boolean")
	_, err = kql.Parse(`event.action: "user.login" and teleport.audit.sucess: true`, types)
	require.ErrorContains(t, err, "not in the index template")
}

// README lists every rule, and the count it gives is right.
func TestReadmeListsEveryRule(t *testing.T) {
	rules, _ := loadAll(t)
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	for _, r := range rules {
		require.Contains(t, readme, "| "+strings.TrimPrefix(r.Name(), "Teleport: ")+" |", "README's rule table lists %q", r.Name())
	}
	require.Contains(t, readme, fmt.Sprintf("%d detection rules", len(rules)))
	table := readme[strings.Index(readme, "| rule | severity |"):]
	table = table[:strings.Index(table, "\n\n")]
	require.Equal(t, len(rules), strings.Count(table, "\n| ")-1, "as many rows as rules (less the header's separator)")
}
