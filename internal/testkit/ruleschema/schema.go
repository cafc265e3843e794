// Package ruleschema checks detection rules against the rule schemas of
// Elastic's own rule tooling (elastic/detection-rules, vendored under
// testdata with their source in SOURCE.md), one per Kibana minor version:
// the check Elastic makes before it ships a rule to a Kibana version.
//
// It is test support: the Kibana stand-in (internal/testkit/estest) refuses what
// these schemas refuse, and the rule tests validate every rule for every
// Kibana version the Fleet package claims. teleportbeat's binary does not
// import it (the schemas are Elastic License 2.0 and stay test data).
package ruleschema

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/elastic/gojsonschema"
)

//go:embed testdata
var files embed.FS

// Types are the rule types vendored.
var Types = []string{"query", "threshold", "eql", "new_terms"}

// Versions returns the Kibana minor versions vendored, oldest first.
func Versions() []string {
	ents, err := files.ReadDir("testdata")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return Less(out[i], out[j]) })
	return out
}

// Less orders "major.minor[.patch]" versions.
func Less(a, b string) bool {
	pa, pb := parts(a), parts(b)
	for i := range 3 {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func parts(v string) [3]int {
	var p [3]int
	v, _, _ = strings.Cut(v, "-") // 9.3.0-SNAPSHOT
	for i, s := range strings.SplitN(v, ".", 3) {
		p[i], _ = strconv.Atoi(s)
	}
	return p
}

// Minor returns the vendored schema version that applies to a Kibana
// version: its own minor, or the newest vendored one below it (a Kibana
// newer than every schema gets the newest). "" when the Kibana is older
// than every schema.
func Minor(kibana string) string {
	var best string
	for _, v := range Versions() {
		if !Less(kibana, v) {
			best = v
		}
	}
	return best
}

// Schema is one version's schema for one rule type.
type Schema struct {
	Version, Type string
	// Properties are the rule fields the schema knows.
	Properties map[string]bool
	// Repaired names the fields whose schema was taken from an earlier
	// version (see repair).
	Repaired []string
	raw      map[string]any
	compiled *gojsonschema.Schema
}

var (
	mu    sync.Mutex
	cache = map[string]*Schema{}
)

// Load returns the schema of a vendored version (see Minor) for a type.
func Load(version, ruleType string) (*Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	key := version + "/" + ruleType
	if s, ok := cache[key]; ok {
		return s, nil
	}
	raw, err := read(version, ruleType)
	if err != nil {
		return nil, err
	}
	s := &Schema{Version: version, Type: ruleType, raw: raw, Properties: map[string]bool{}}
	if donor := repairDonor(version); donor != "" {
		d, err := read(donor, ruleType)
		if err != nil {
			return nil, err
		}
		s.Repaired = repair(raw, d)
	}
	for k := range asMap(raw["properties"]) {
		s.Properties[k] = true
	}
	s.compiled, err = gojsonschema.NewSchema(gojsonschema.NewGoLoader(raw))
	if err != nil {
		return nil, fmt.Errorf("rule schema %s %s: %w", version, ruleType, err)
	}
	cache[key] = s
	return s, nil
}

// Raw returns the schema as vendored, without the repair.
func Raw(version, ruleType string) (map[string]any, error) { return read(version, ruleType) }

func read(version, ruleType string) (map[string]any, error) {
	p := path.Join("testdata", version, version+"."+ruleType+".json")
	b, err := files.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("no rule schema for Kibana %s and rule type %q: %w", version, ruleType, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("rule schema %s: %w", p, err)
	}
	return m, nil
}

// The schemas detection-rules generated for 8.19, 9.1 and 9.3 onwards come
// from a newer marshmallow-jsonschema that loses parts of nested dataclasses:
// required_fields items lose `type`, related_integrations items `version`
// and `integration`, threshold and alert_suppression their required keys,
// and the top level no longer requires name, risk_score and rule_id.
// detection-rules' own dataclasses (rule.py: RequiredFields has name, type
// and ecs; RelatedIntegrations package, version and integration) and
// Kibana's schema (common_attributes.schema.yaml: RelatedIntegration
// requires package and version) still have them, so a rule valid for
// Kibana would be refused by the raw schema and an invalid one accepted.
// The repair takes, for the fields whose nested schema changed, the
// definition of the last schema generated before (8.18 for 8.19, 9.0 for
// 9.1, 9.2 for 9.3 onwards) and adds back the top-level required fields it
// lost (lostRequired); a field new in the later version keeps its own
// definition.
func repairDonor(version string) string {
	switch {
	case version == "8.19":
		return "8.18"
	case version == "9.1":
		return "9.0"
	case Less("9.2", version):
		return "9.2"
	}
	return ""
}

// lostRequired are the top-level fields Kibana requires (a rule without a
// name, risk score or rule_id cannot be imported) that the damaged schemas
// stopped requiring.
var lostRequired = []string{"name", "risk_score", "rule_id"}

// repairable are the fields whose nested schema the generator damaged;
// the test checks these are the only ones that differ.
var repairable = []string{"actions", "alert_suppression", "exceptions_list", "new_terms", "related_integrations", "required_fields", "threat", "threshold"}

func repair(raw, donor map[string]any) []string {
	props, dprops := asMap(raw["properties"]), asMap(donor["properties"])
	var done []string
	for _, f := range repairable {
		if _, ok := props[f]; !ok {
			continue
		}
		if d, ok := dprops[f]; ok {
			props[f] = d
			done = append(done, f)
		}
	}
	req := map[string]bool{}
	for _, r := range asList(raw["required"]) {
		req[r.(string)] = true
	}
	for _, r := range lostRequired {
		if !req[r] {
			raw["required"] = append(asList(raw["required"]), r)
			done = append(done, "required:"+r)
		}
	}
	return done
}

// Validate checks a rule, as Kibana's import API takes it, against the
// schema. Fields the schema does not know are reported apart (Unknown):
// detection-rules strips them before it validates a rule for an older
// version, and Kibana ignores them.
func (s *Schema) Validate(rule map[string]any) error {
	known := map[string]any{}
	for k, v := range schemaForm(rule) {
		if s.Properties[k] {
			known[k] = v
		}
	}
	// Round-trip through JSON so that the numbers and maps are JSON's.
	b, err := json.Marshal(known)
	if err != nil {
		return err
	}
	res, err := s.compiled.Validate(gojsonschema.NewBytesLoader(b))
	if err != nil {
		return fmt.Errorf("validate against the Kibana %s %s rule schema: %w", s.Version, s.Type, err)
	}
	if res.Valid() {
		return nil
	}
	var msgs []string
	for _, e := range res.Errors() {
		msgs = append(msgs, e.String())
	}
	sort.Strings(msgs)
	return fmt.Errorf("refused by the Kibana %s %s rule schema: %s", s.Version, s.Type, strings.Join(msgs, "; "))
}

// Unknown returns the rule's fields the schema does not know, sorted.
func (s *Schema) Unknown(rule map[string]any) []string {
	var out []string
	for k := range schemaForm(rule) {
		if !s.Properties[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// ValidateFor checks a rule for a Kibana version (see Minor): the rule's
// type picks the schema.
func ValidateFor(kibana string, rule map[string]any) error {
	v := Minor(kibana)
	if v == "" {
		return fmt.Errorf("no rule schema for Kibana %s (the oldest is %s)", kibana, Versions()[0])
	}
	t, _ := rule["type"].(string)
	s, err := Load(v, t)
	if err != nil {
		return err
	}
	return s.Validate(rule)
}

// schemaForm turns a rule as Kibana's API takes it into the form the
// schemas describe, as detection-rules reads an exported rule
// (NewTermsRuleData.preload_data): a new terms rule's new_terms_fields and
// history_window_start become its new_terms object.
func schemaForm(rule map[string]any) map[string]any {
	fields, hasFields := rule["new_terms_fields"]
	start, hasStart := rule["history_window_start"]
	if !hasFields || !hasStart {
		return rule
	}
	out := make(map[string]any, len(rule))
	for k, v := range rule {
		if k != "new_terms_fields" && k != "history_window_start" {
			out[k] = v
		}
	}
	out["new_terms"] = map[string]any{
		"field": "new_terms_fields", "value": fields,
		"history_window_start": []any{map[string]any{"field": "history_window_start", "value": start}},
	}
	return out
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
