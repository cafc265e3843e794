// Package rules holds teleportbeat's Kibana Security detection rules for
// Teleport (rules/*.yml, one rule per file, with the events that must and
// must not raise an alert), renders them as Kibana's rule import API and
// the Fleet package take them, and imports them into Kibana.
package rules

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed rules/*.yml
var files embed.FS

// Indices are the indices every rule searches: teleportbeat's data stream
// (teleportbeat-<version>) and the Fleet package's.
var Indices = []string{"teleportbeat-*", "logs-teleportbeat.audit-*"}

// Version is the rules' version: Kibana keeps the highest version of a
// rule_id; raise it when a rule changes.
const Version = 1

// Rule is one detection rule: Kibana's rule object, and the fixtures of
// its tests.
type Rule struct {
	File   string
	Object map[string]any // as Kibana's import API takes it
	Tests  Tests
}

// Tests are Teleport events (raw, as Teleport writes them) whose mapped
// documents must (Hit) and must not (Miss) raise an alert. For a
// threshold rule each list is one set of events seen together.
type Tests struct {
	Hit  []Fixture `yaml:"hit"`
	Miss []Fixture `yaml:"miss"`
}

// Fixture is an event, Repeat times (once when 0).
type Fixture struct {
	Repeat int            `yaml:"repeat"`
	Event  map[string]any `yaml:"event"`
}

// ID is the rule's rule_id.
func (r Rule) ID() string { return r.Object["rule_id"].(string) }

// Name is the rule's name.
func (r Rule) Name() string { return r.Object["name"].(string) }

// All returns every rule, sorted by name.
func All() ([]Rule, error) {
	names, err := fs.Glob(files, "rules/*.yml")
	if err != nil {
		return nil, err
	}
	var out []Rule
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		r, err := parse(path.Base(name), b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func parse(file string, b []byte) (Rule, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return Rule{}, fmt.Errorf("rule %s: %w", file, err)
	}
	var t struct {
		Tests Tests `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &t); err != nil {
		return Rule{}, fmt.Errorf("rule %s tests: %w", file, err)
	}
	delete(raw, "tests")
	// The defaults every rule shares.
	obj := map[string]any{
		"author":      []string{"teleportbeat"},
		"license":     "Apache-2.0",
		"language":    "kuery",
		"index":       Indices,
		"from":        "now-6m",
		"interval":    "5m",
		"max_signals": 100,
		"version":     Version,
		// Disabled on import, as Elastic's prebuilt rules are: enable them
		// in Security → Rules (the "Data Source: Teleport" tag selects
		// them all). Importing again (an upgrade) overwrites the rule,
		// which disables it again.
		"enabled":    false,
		"references": []string{"https://goteleport.com/docs/reference/monitoring/audit/"},
	}
	for k, v := range raw {
		obj[k] = v
	}
	tags := []string{"Data Source: Teleport", "Domain: Identity", "Use Case: Threat Detection"}
	for _, th := range asList(obj["threat"]) {
		if tac, ok := asMap(th)["tactic"]; ok {
			tags = append(tags, "Tactic: "+fmt.Sprint(asMap(tac)["name"]))
		}
	}
	obj["tags"] = dedupe(tags)
	// JSON, as Kibana reads it (YAML's maps become JSON objects).
	j, err := json.Marshal(obj)
	if err != nil {
		return Rule{}, fmt.Errorf("rule %s: %w", file, err)
	}
	var clean map[string]any
	if err := json.Unmarshal(j, &clean); err != nil {
		return Rule{}, err
	}
	return Rule{File: file, Object: clean, Tests: t.Tests}, nil
}

// NDJSON renders rules as the rule import API takes them, one per line.
func NDJSON(rules []Rule) []byte {
	var b bytes.Buffer
	for _, r := range rules {
		line, _ := json.Marshal(r.Object)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FleetAsset renders a rule as a Fleet package's kibana/security_rule
// asset: a security-rule saved object whose id is <rule_id>_<version>,
// the file's name.
func FleetAsset(r Rule) (name string, body []byte) {
	id := fmt.Sprintf("%s_%d", r.ID(), Version)
	b, _ := json.MarshalIndent(map[string]any{"id": id, "type": "security-rule", "attributes": r.Object}, "", "  ")
	return id + ".json", append(b, '\n')
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] && strings.TrimSpace(x) != "" {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
