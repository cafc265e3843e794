// Package rules holds teleportbeat's Kibana Security detection rules for
// Teleport (rules/*.yml, one rule per file, with the events that must and
// must not raise an alert), renders them as Kibana's rule import API and
// the Fleet package take them, and installs and upgrades them in Kibana
// without losing what analysts changed (install.go).
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
	"time"

	"gopkg.in/yaml.v3"

	"github.com/teleportbeat/teleportbeat/internal/version"
)

//go:embed rules/*.yml
var files embed.FS

// Indices are the indices every rule searches: teleportbeat's data stream
// (teleportbeat-<version>) and the Fleet package's.
var Indices = []string{"teleportbeat-*", "logs-teleportbeat.audit-*"}

// TimestampField is the time every rule searches by: when Elasticsearch
// ingested the event (set by the ingest pipeline `teleportbeat setup`
// installs), not when it happened. An event that reaches Elasticsearch
// late (found by a late-event sweep, shipped after an outage, batched by
// Teleport's Athena backend) is searched by the run after it arrives;
// searched by @timestamp it would fall before every run's window.
// Documents without event.ingested (an output that bypasses the pipeline)
// are searched by @timestamp: the fallback stays enabled.
const TimestampField = "event.ingested"

// Schedule: every rule runs every Interval over the events ingested in the
// last LookBack (Elastic's prebuilt rules' 5 minutes and 9 minutes): the
// overlap covers a run that starts late.
const (
	Interval = "5m"
	LookBack = 9 * time.Minute
)

// PackageName is the Fleet package the rules belong to, their related
// integration.
const PackageName = "teleportbeat"

// InvestigationFields are shown on every alert unless a rule names its own.
var InvestigationFields = []string{"event.action", "event.outcome", "user.name", "user.target.name", "user.effective.name", "source.ip", "source.geo.country_name", "host.name"}

// Rule is one detection rule: Kibana's rule object, and the fixtures of
// its tests.
type Rule struct {
	File   string
	Object map[string]any // as Kibana's import API takes it
	Tests  Tests
	// Respond is the rule's ready action, if it has one (not part of
	// the rule object: it needs the connector setup makes).
	Respond *Respond
}

// Tests are Teleport events (raw, as Teleport writes them) whose mapped
// documents must (Hit) and must not (Miss) raise an alert. For a
// threshold, sequence or new terms rule each list is one set of events
// seen together; History are events seen before either (what a new terms
// rule learns from).
type Tests struct {
	History []Fixture `yaml:"history"`
	Hit     []Fixture `yaml:"hit"`
	Miss    []Fixture `yaml:"miss"`
}

// Fixture is an event, Repeat times (once when 0). Each event happens
// Every (default 10s) after the one before it (After for its first);
// Elasticsearch ingests it Ingested after it happened (default 1s).
type Fixture struct {
	Repeat   int            `yaml:"repeat"`
	After    Duration       `yaml:"after"`
	Every    Duration       `yaml:"every"`
	Ingested Duration       `yaml:"ingested"`
	Event    map[string]any `yaml:"event"`
}

// Duration is a time.Duration written as Go writes it ("545s", "20m").
type Duration time.Duration

// UnmarshalYAML reads a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ID is the rule's rule_id.
func (r Rule) ID() string { return r.Object["rule_id"].(string) }

// Name is the rule's name.
func (r Rule) Name() string { return r.Object["name"].(string) }

// Type is the rule's type (query, threshold, eql, new_terms).
func (r Rule) Type() string { return r.Object["type"].(string) }

// Version is the rule's version: raise it when the rule changes (the
// history test says so), and `setup` upgrades installed rules to it.
func (r Rule) Version() int {
	v, _ := r.Object["version"].(float64)
	return int(v)
}

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
		r, err := Parse(path.Base(name), b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// setupGuide is every rule's setup guide.
const setupGuide = `## Setup

This rule reads Teleport audit events shipped by teleportbeat (or the teleportbeat Fleet package run by Elastic Agent).

- Run ` + "`teleportbeat setup`" + ` (or install the Fleet package): it loads the index template and the ingest pipeline that sets ` + "`event.ingested`" + `, the time this rule searches by, so that events Teleport delivers late still alert.
- With an output other than Elasticsearch (Logstash, Kafka), set ` + "`event.ingested`" + ` where the events enter Elasticsearch (the pipeline does it when the events are indexed through it); without it the rule searches by ` + "`@timestamp`" + ` and misses late events.
`

// Parse reads one rule file.
func Parse(file string, b []byte) (Rule, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return Rule{}, fmt.Errorf("rule %s: %w", file, err)
	}
	var t struct {
		Tests   Tests    `yaml:"tests"`
		Respond *Respond `yaml:"respond"`
	}
	if err := yaml.Unmarshal(b, &t); err != nil {
		return Rule{}, fmt.Errorf("rule %s tests: %w", file, err)
	}
	if t.Respond != nil {
		if err := t.Respond.check(); err != nil {
			return Rule{}, fmt.Errorf("rule %s: %w", file, err)
		}
	}
	delete(raw, "tests")
	delete(raw, "respond")
	if v, ok := raw["version"].(int); !ok || v < 1 {
		return Rule{}, fmt.Errorf("rule %s: version: a positive integer is required", file)
	}
	// The defaults every rule shares.
	obj := map[string]any{
		"author":      []string{"teleportbeat"},
		"license":     "Apache-2.0",
		"language":    "kuery",
		"index":       Indices,
		"from":        fmt.Sprintf("now-%dm", int(LookBack.Minutes())),
		"interval":    Interval,
		"max_signals": 100,
		// Installed disabled, as Elastic's prebuilt rules are: enable them
		// in Security → Rules (the "Data Source: Teleport" tag selects
		// them all). An upgrade keeps what the analyst enabled.
		"enabled":                              false,
		"references":                           []string{"https://goteleport.com/docs/reference/monitoring/audit/"},
		"timestamp_override":                   TimestampField,
		"timestamp_override_fallback_disabled": false,
		"related_integrations":                 []map[string]any{{"package": PackageName, "version": "^" + version.FleetPackage}},
		"setup":                                setupGuide,
	}
	if raw["type"] == "eql" {
		obj["language"] = "eql"
	}
	for k, v := range raw {
		obj[k] = v
	}
	if own, ok := raw["setup"].(string); ok {
		obj["setup"] = strings.TrimSpace(own) + "\n\n" + setupGuide
	}
	fields := InvestigationFields
	if f, ok := raw["investigation_fields"].([]any); ok {
		fields = nil
		for _, x := range f {
			fields = append(fields, fmt.Sprint(x))
		}
	}
	obj["investigation_fields"] = map[string]any{"field_names": fields}
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
	return Rule{File: file, Object: clean, Tests: t.Tests, Respond: t.Respond}, nil
}

// NDJSON renders rule objects as the rule import API takes them, one per
// line.
func NDJSON(objs []map[string]any) []byte {
	var b bytes.Buffer
	for _, o := range objs {
		line, _ := json.Marshal(o)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Objects returns the rules' objects.
func Objects(rules []Rule) []map[string]any {
	out := make([]map[string]any, len(rules))
	for i, r := range rules {
		out[i] = r.Object
	}
	return out
}

// FleetAsset renders a rule as a Fleet package's kibana/security_rule
// asset: a security-rule saved object whose id is <rule_id>_<version>,
// the file's name.
func FleetAsset(r Rule) (name string, body []byte) {
	id := fmt.Sprintf("%s_%d", r.ID(), r.Version())
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
