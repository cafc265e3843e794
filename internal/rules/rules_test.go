package rules

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/mapstr"

	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/geoip"
	"github.com/teleportbeat/teleportbeat/internal/testkit/eql"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/fieldsyml"
	"github.com/teleportbeat/teleportbeat/internal/testkit/kql"
	"github.com/teleportbeat/teleportbeat/internal/testkit/ruleschema"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

type fields struct {
	types map[string]string
	ecs   map[string]bool
}

func loadAll(t *testing.T) ([]Rule, fields) {
	t.Helper()
	rules, err := All()
	require.NoError(t, err)
	types, err := fieldsyml.Types("../../fields.yml")
	require.NoError(t, err)
	ecsFields, err := fieldsyml.ECS("../../fields.yml")
	require.NoError(t, err)
	return rules, fields{types, ecsFields}
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

// queryFields are the fields a rule's query names.
func queryFields(t *testing.T, r Rule, f fields) []string {
	t.Helper()
	if r.Type() == "eql" {
		q, err := eql.Parse(r.Object["query"].(string), eql.Types(f.types))
		require.NoError(t, err, r.File)
		return q.Fields()
	}
	q, err := kql.Parse(r.Object["query"].(string), kql.Types(f.types))
	require.NoError(t, err, r.File)
	return q.Fields()
}

// requiredFields is what a rule's required_fields must say: every field
// its query, threshold (and cardinality) and new terms name, with the
// type of the index template and whether ECS defines it.
func requiredFields(t *testing.T, r Rule, f fields) []any {
	names := queryFields(t, r, f)
	if th, ok := r.Object["threshold"].(map[string]any); ok {
		for _, x := range th["field"].([]any) {
			names = append(names, x.(string))
		}
		for _, c := range asList(th["cardinality"]) {
			names = append(names, asMap(c)["field"].(string))
		}
	}
	for _, x := range asList(r.Object["new_terms_fields"]) {
		names = append(names, x.(string))
	}
	sort.Strings(names)
	var out []any
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, map[string]any{"name": n, "type": f.types[n], "ecs": f.ecs[n]})
		}
	}
	return out
}

func TestRuleSchema(t *testing.T) {
	rules, f := loadAll(t)
	require.GreaterOrEqual(t, len(rules), 24)
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
			require.GreaterOrEqual(t, r.Version(), 1)
			for _, k := range []string{"description", "note", "query", "setup"} {
				require.NotEmpty(t, o[k], k)
			}
			require.NotEmpty(t, o["false_positives"])
			require.Contains(t, []string{"query", "threshold", "eql", "new_terms"}, r.Type())
			if r.Type() == "eql" {
				require.Equal(t, "eql", o["language"])
			} else {
				require.Equal(t, "kuery", o["language"])
			}
			require.ElementsMatch(t, []any{"teleportbeat-*", "logs-teleportbeat.audit-*"}, o["index"])
			band, ok := riskBands[o["severity"].(string)]
			require.True(t, ok, "severity %v", o["severity"])
			risk := o["risk_score"].(float64)
			require.True(t, risk >= band[0] && risk <= band[1], "risk_score %v out of the %v band %v", risk, o["severity"], band)
			switch r.Type() {
			case "threshold":
				th := o["threshold"].(map[string]any)
				require.NotEmpty(t, th["field"])
				require.GreaterOrEqual(t, th["value"].(float64), 2.0)
			case "new_terms":
				require.NotEmpty(t, o["new_terms_fields"])
				require.LessOrEqual(t, len(asList(o["new_terms_fields"])), 3, "Kibana takes up to three new terms fields")
				_, err := dateMath(o["history_window_start"].(string))
				require.NoError(t, err)
			}

			// Searched by ingest time, with the fallback to @timestamp.
			require.Equal(t, "event.ingested", o["timestamp_override"])
			require.Equal(t, false, o["timestamp_override_fallback_disabled"])
			from, err := dateMath(o["from"].(string))
			require.NoError(t, err)
			require.GreaterOrEqual(t, from, LookBack, "the look-back covers a late run")
			require.Equal(t, []any{map[string]any{"package": "teleportbeat", "version": "^" + version.FleetPackage}}, o["related_integrations"])

			// Investigation and suppression fields exist.
			for _, x := range asList(asMap(o["investigation_fields"])["field_names"]) {
				require.Contains(t, f.types, x, "investigation field %v is not in the index template", x)
			}
			if s := asMap(o["alert_suppression"]); s != nil {
				for _, x := range asList(s["group_by"]) {
					require.Contains(t, f.types, x, "suppression field %v", x)
				}
				if r.Type() == "threshold" {
					require.Nil(t, s["group_by"], "a threshold rule suppresses by its threshold fields")
				}
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
			// says it has (the query parsers check the query against the
			// types), and ecs says whether ECS defines it.
			require.Equal(t, requiredFields(t, r, f), o["required_fields"], "required_fields")
		})
	}
}

// kibanaOnly are the fields Kibana's import takes that detection-rules'
// schemas leave to its own packaging: version (before 8.16's schema) and
// timestamp_override_fallback_disabled (Kibana's
// TimestampOverrideFallbackDisabled, a boolean, in every version claimed).
var kibanaOnly = []string{"version", "timestamp_override_fallback_disabled"}

// TestRulesImportIntoEveryKibanaTheyClaim validates every rule, as setup
// sends it to each Kibana version the Fleet package claims (ForKibana),
// against Elastic's rule schema of that version, and checks that nothing
// it sends is unknown there (Kibana would drop it silently).
func TestRulesImportIntoEveryKibanaTheyClaim(t *testing.T) {
	rules, _ := loadAll(t)
	for _, v := range ruleschema.Versions() {
		for _, r := range rules {
			obj := ForKibana(r.Object, v+".0")
			s, err := ruleschema.Load(v, r.Type())
			require.NoError(t, err)
			require.NoError(t, s.Validate(obj), "%s for Kibana %s", r.File, v)
			for _, u := range s.Unknown(obj) {
				require.Contains(t, kibanaOnly, u, "%s sends %s to Kibana %s, whose schema does not know it", r.File, u, v)
			}
		}
	}
	// And the way the rules were before (no ecs in required_fields) is
	// refused where Kibana refused it.
	broken := maps.Clone(rules[0].Object)
	broken["required_fields"] = []any{map[string]any{"name": "event.action", "type": "keyword"}}
	for _, v := range []string{"8.13", "8.14", "9.0", "9.3"} {
		require.Error(t, ruleschema.ValidateFor(v+".0", ForKibana(broken, v+".0")), v)
	}
}

func TestForKibanaLeavesOutWhatAnOlderKibanaLacks(t *testing.T) {
	rules, _ := loadAll(t)
	var nt Rule
	for _, r := range rules {
		if r.Type() == "new_terms" {
			nt = r
		}
	}
	require.NotEmpty(t, nt.File)
	nt.Object = maps.Clone(nt.Object)
	nt.Object["alert_suppression"] = map[string]any{"group_by": []any{"user.name"}}
	old := ForKibana(nt.Object, "8.13.4")
	require.NotContains(t, old, "investigation_fields")
	require.NotContains(t, old, "alert_suppression", "new terms suppression came with 8.14")
	require.Contains(t, old, "new_terms_fields")
	cur := ForKibana(nt.Object, "8.14.0")
	require.Contains(t, cur, "investigation_fields")
	require.Contains(t, cur, "alert_suppression")
	require.Len(t, ForKibana(nt.Object, ""), len(nt.Object), "an unknown version gets everything")
	require.True(t, olderThan("8.13.4", "8.14"))
	require.False(t, olderThan("9.0.0-SNAPSHOT", "8.14"))
	require.False(t, olderThan("8.14.3", "8.14"))
}

// geo is what the tests' GeoIP databases know: two networks in the
// Netherlands (an ISP and a hosting provider), one in the US.
var geo = estest.GeoIPTable{
	"GeoLite2-City.mmdb": {
		"198.51.100.10": {"country_iso_code": "NL", "country_name": "Netherlands", "city_name": "Amsterdam"},
		"198.51.100.11": {"country_iso_code": "NL", "country_name": "Netherlands", "city_name": "Utrecht"},
		"192.0.2.77":    {"country_iso_code": "NL", "country_name": "Netherlands", "city_name": "Amsterdam"},
		"203.0.113.40":  {"country_iso_code": "US", "country_name": "United States", "city_name": "Ashburn"},
		"203.0.113.41":  {"country_iso_code": "US", "country_name": "United States", "city_name": "Ashburn"},
	},
	"GeoLite2-ASN.mmdb": {
		"198.51.100.10": {"asn": 64500, "organization_name": "Example Broadband"},
		"198.51.100.11": {"asn": 64500, "organization_name": "Example Broadband"},
		"192.0.2.77":    {"asn": 64520, "organization_name": "Example VPS Hosting"},
		"203.0.113.40":  {"asn": 64510, "organization_name": "Example Cloud"},
		"203.0.113.41":  {"asn": 64510, "organization_name": "Example Cloud"},
	},
}

// start is when the tests' events begin.
var start = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// documents maps fixtures the way teleportbeat maps Teleport's events and
// Elasticsearch ingests them (the GeoIP pipeline setup installs, which
// sets event.ingested): each gets a uid and a time (Every, default 10 s,
// after the one before; After before a fixture's first), ingested
// Ingested (default 1 s) later, plus delay; an identity's "+<duration>"
// expiry is relative to the event's time.
func documents(t *testing.T, fixtures []Fixture, from time.Time, delay time.Duration, prefix string) []tdoc {
	t.Helper()
	m := ecs.NewAuditMapper()
	pipeline := geoip.Pipeline("test")
	var docs []tdoc
	at := from
	n := 0
	for fi, f := range fixtures {
		if fi > 0 {
			at = at.Add(10 * time.Second)
		}
		at = at.Add(time.Duration(f.After))
		for i := range max(1, f.Repeat) {
			if i > 0 {
				every := time.Duration(f.Every)
				if every == 0 {
					every = 10 * time.Second
				}
				at = at.Add(every)
			}
			uid := fmt.Sprintf("00000000-0000-4000-8000-%s%011d", prefix, n)
			raw := map[string]any{"uid": uid, "time": at.Format(time.RFC3339Nano)}
			for k, v := range f.Event {
				raw[k] = v
			}
			if id, ok := raw["identity"].(map[string]any); ok {
				if exp, ok := id["expires"].(string); ok && strings.HasPrefix(exp, "+") {
					d, err := time.ParseDuration(exp[1:])
					require.NoError(t, err)
					cp := maps.Clone(id)
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
			doc["@timestamp"] = out.Timestamp.UTC().Format(time.RFC3339Nano)
			ingestDelay := time.Duration(f.Ingested)
			if ingestDelay == 0 {
				ingestDelay = time.Second
			}
			ingested := at.Add(ingestDelay + delay)
			stored, err := estest.Simulate(pipeline, doc, ingested, geo)
			require.NoError(t, err)
			docs = append(docs, tdoc{id: uid, at: at, ingested: ingested, doc: stored})
			n++
		}
	}
	return docs
}

// timeline is a rule's history (three days before start), then events.
func timeline(t *testing.T, r Rule, events []Fixture, delay time.Duration) []tdoc {
	docs := documents(t, r.Tests.History, start.Add(-72*time.Hour), 0, "1")
	return append(docs, documents(t, events, start, delay, "2")...)
}

// alertsOn runs a rule over a timeline as Kibana's detection engine would.
func alertsOn(t *testing.T, r Rule, f fields, docs []tdoc) [][]string {
	t.Helper()
	q, err := compile(r, f.types)
	require.NoError(t, err, r.File)
	return newEngine(r, q).run(docs, start.Add(-LookBack))
}

// TestRulesFireOnTheirEventsOnly runs every rule as Kibana's detection
// engine would, over the documents the mapper and the ingest pipeline make
// of its fixtures: the hits raise an alert (a threshold or sequence rule
// exactly one), the near misses none.
func TestRulesFireOnTheirEventsOnly(t *testing.T) {
	rules, f := loadAll(t)
	for _, r := range rules {
		t.Run(r.File, func(t *testing.T) {
			require.NotEmpty(t, r.Tests.Hit, "a hit")
			require.NotEmpty(t, r.Tests.Miss, "a near miss")
			hits := alertsOn(t, r, f, timeline(t, r, r.Tests.Hit, 0))
			switch r.Type() {
			case "threshold", "eql":
				require.Len(t, hits, 1, "the hit events together raise one alert: %v", hits)
			default:
				require.NotEmpty(t, hits, "the hits raise an alert")
			}
			if r.Type() == "query" && r.Object["alert_suppression"] == nil {
				require.Len(t, hits, len(documents(t, r.Tests.Hit, start, 0, "2")), "each hit raises its alert")
			}
			misses := alertsOn(t, r, f, timeline(t, r, r.Tests.Miss, 0))
			require.Empty(t, misses, "the near misses raise none")
		})
	}
}

// TestLateEventsStillAlert stores every rule's hits 20 minutes after they
// happened (a late-event sweep, a backfill after an outage): searched by
// event.ingested they alert as when on time; searched by @timestamp, as
// before, no run's window would hold them.
func TestLateEventsStillAlert(t *testing.T) {
	rules, f := loadAll(t)
	for _, r := range rules {
		t.Run(r.File, func(t *testing.T) {
			onTime := alertsOn(t, r, f, timeline(t, r, r.Tests.Hit, 0))
			late := alertsOn(t, r, f, timeline(t, r, r.Tests.Hit, 20*time.Minute))
			require.Equal(t, len(onTime), len(late), "stored 20 minutes late, the hits raise the same alerts")

			from, err := dateMath(r.Object["from"].(string))
			require.NoError(t, err)
			if from >= 20*time.Minute {
				return // a look-back this long holds the late events by @timestamp too
			}
			byTime := r
			byTime.Object = maps.Clone(r.Object)
			delete(byTime.Object, "timestamp_override")
			require.Empty(t, alertsOn(t, byTime, f, timeline(t, byTime, r.Tests.Hit, 20*time.Minute)),
				"searched by @timestamp, a late event never alerts (what the override fixes)")
		})
	}
}

// The engine itself: a threshold counts within the run's window only.
func TestThresholdsCountWithinTheWindow(t *testing.T) {
	rules, f := loadAll(t)
	var r Rule
	for _, x := range rules {
		if x.File == "failed-logins-per-user.yml" {
			r = x
		}
	}
	require.NotNil(t, r.Object["alert_suppression"], "the rule suppresses")
	suppressedRule := r
	r.Object = maps.Clone(r.Object)
	delete(r.Object, "alert_suppression")
	ev := map[string]any{"event": "user.login", "code": "T1000W", "success": false, "method": "local", "user": "dave"}
	spread := []Fixture{{Repeat: 5, Every: Duration(545 * time.Second), Event: ev}}
	require.Empty(t, alertsOn(t, r, f, timeline(t, r, spread, 0)), "545 s apart, no window holds two")
	close := []Fixture{{Repeat: 5, Every: Duration(60 * time.Second), Event: ev}}
	require.Len(t, alertsOn(t, r, f, timeline(t, r, close, 0)), 1, "60 s apart, a run's window holds five")
	burst := []Fixture{{Repeat: 10, Every: Duration(20 * time.Second), Event: ev}}
	require.Len(t, alertsOn(t, r, f, timeline(t, r, burst, 0)), 1, "ten failures in one window: one alert, counted once")
	twice := []Fixture{{Repeat: 5, Every: Duration(20 * time.Second), Event: ev}, {After: Duration(7 * time.Minute), Repeat: 5, Every: Duration(20 * time.Second), Event: ev}}
	require.Len(t, alertsOn(t, r, f, timeline(t, r, twice, 0)), 2, "a second burst after the first alert: a second alert")
	// Suppression (the rule's 30 minutes): a second burst 7 minutes after the
	// first is folded into its alert; an hour later it alerts again.
	require.Len(t, alertsOn(t, suppressedRule, f, timeline(t, suppressedRule, twice, 0)), 1, "suppressed for 30 minutes")
	later := []Fixture{twice[0], {After: Duration(time.Hour), Repeat: 5, Every: Duration(20 * time.Second), Event: ev}}
	require.Len(t, alertsOn(t, suppressedRule, f, timeline(t, suppressedRule, later, 0)), 2, "an hour later: a new alert")
	again := []Fixture{{Repeat: 5, Every: Duration(20 * time.Second), Event: ev}, {After: Duration(7 * time.Minute), Repeat: 2, Every: Duration(20 * time.Second), Event: ev}}
	require.Len(t, alertsOn(t, r, f, timeline(t, r, again, 0)), 1, "two more after the alert are not counted with the five before")
}

// A rule that compares a boolean with a string, or names a field teleportbeat
// does not write, cannot pass the tests above.
func TestBrokenRulesFail(t *testing.T) {
	_, f := loadAll(t)
	_, err := kql.Parse(`event.action: "user.login" and teleport.audit.success: "true"`, kql.Types(f.types))
	require.ErrorContains(t, err, "boolean")
	_, err = kql.Parse(`event.action: "user.login" and teleport.audit.sucess: true`, kql.Types(f.types))
	require.ErrorContains(t, err, "not in the index template")
	_, err = eql.Parse(`sequence by teleport.audit.idd [any where event.action == "a"] [any where event.action == "b"]`, eql.Types(f.types))
	require.ErrorContains(t, err, "not in the index template")
}

// The history records every rule's current version, and a rule whose
// content changed without a new version is refused.
func TestHistoryRecordsEveryRuleVersion(t *testing.T) {
	rules, _ := loadAll(t)
	h, err := LoadHistory()
	require.NoError(t, err)
	before := string(h.JSON())
	require.NoError(t, h.Record(rules))
	require.Equal(t, before, string(h.JSON()), "history.json lacks the current versions: run go tool mage update")

	changed := rules[0]
	changed.Object = maps.Clone(changed.Object)
	changed.Object["query"] = changed.Object["query"].(string) + " and user.name: x"
	require.ErrorContains(t, h.Record([]Rule{changed}), "raise its version")
	older := changed
	older.Object = maps.Clone(changed.Object)
	older.Object["version"] = float64(0)
	require.ErrorContains(t, h.Record([]Rule{older}), "older than the recorded version")
}

// README lists every rule with its type and what it needs, and the count
// it gives is right.
func TestReadmeListsEveryRule(t *testing.T) {
	rules, _ := loadAll(t)
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	require.Contains(t, readme, fmt.Sprintf("%d detection rules", len(rules)))
	table := readme[strings.Index(readme, "| rule | type | severity | needs |"):]
	table = table[:strings.Index(table, "\n\n")]
	rows := strings.Split(table, "\n")[2:]
	require.Len(t, rows, len(rules), "as many rows as rules")
	for _, r := range rules {
		name := strings.TrimPrefix(r.Name(), "Teleport: ")
		i := slices.IndexFunc(rows, func(row string) bool { return strings.HasPrefix(row, "| "+name+" |") })
		require.GreaterOrEqual(t, i, 0, "README's rule table lists %q", r.Name())
		cells := strings.Split(rows[i], " | ")
		require.Equal(t, r.Type(), strings.Trim(cells[1], "` "), "%s: type", name)
		require.Equal(t, r.Object["severity"], strings.TrimSpace(cells[2]), "%s: severity", name)
		require.NotEmpty(t, strings.Trim(cells[3], " |"), "%s: what it needs", name)
	}
}
