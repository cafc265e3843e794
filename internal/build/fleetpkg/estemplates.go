package fleetpkg

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v2"
)

// What Fleet installs in Elasticsearch for the package, built as Kibana's
// Fleet builds it (x-pack/platform/plugins/shared/fleet/server/services/
// epm/elasticsearch/template/template.ts and install.ts), so that tests
// can put it into the recording Elasticsearch and write to the data
// streams as Elastic Agent does:
//
//   - per data stream, the index template <type>-<dataset> on
//     <type>-<dataset>-*, priority 200, a data stream, composed of
//     logs@mappings, logs@settings, <type>-<dataset>@package, logs@custom,
//     <type>-<dataset>@custom (the two @custom ones may be missing),
//     ecs@mappings and .fleet_globals-1;
//   - the @package component template: the data stream's fields mapped as
//     generateMappings does (keywords with ignore_above 1024, integer as
//     long, groups as objects, constant_keyword values, object_type as
//     dynamic templates), index.default_pipeline the data stream's ingest
//     pipeline, and the total-field limit getFieldsLimit gives (1,000, or
//     10,000 for more than 500 fields);
//   - the ingest pipeline <type>-<dataset>-<version>.
//
// The component templates Elasticsearch and Fleet own (logs@mappings,
// logs@settings, ecs@mappings, .fleet_globals-1) are the recording
// Elasticsearch's (estest); .fleet_agent_id_verification-1 and its final
// pipeline are left out (a painless script the stand-in does not run).

// ESAssets are the Elasticsearch assets of the package, by name, each the
// body of its PUT request.
type ESAssets struct {
	ComponentTemplates map[string]map[string]any
	IndexTemplates     map[string]map[string]any
	Pipelines          map[string]map[string]any
}

// ElasticsearchAssets builds the package's index templates, component
// templates and pipelines. resolveECS turns a data stream's
// fields/ecs.yml of `external: ecs` references into definitions, as
// elastic-package does when it builds the package.
func (p *Package) ElasticsearchAssets(resolveECS func([]byte) ([]byte, error)) (*ESAssets, error) {
	out := &ESAssets{
		ComponentTemplates: map[string]map[string]any{},
		IndexTemplates:     map[string]map[string]any{},
		Pipelines:          map[string]map[string]any{},
	}
	meta := map[string]any{"package": map[string]any{"name": p.Manifest.Name}, "managed_by": "fleet", "managed": true}
	for _, dir := range p.DataStreamNames() {
		ds := p.DataStreams[dir]
		name := ds.Type + "-" + p.Dataset(dir)
		fields, err := p.dataStreamFields(dir, resolveECS)
		if err != nil {
			return nil, err
		}
		mappings := generateMappings(fields)
		settings := map[string]any{"index": map[string]any{
			"mapping": map[string]any{"total_fields": map[string]any{"limit": fieldsLimit(countFields(fields))}},
		}}
		pipelineFile := filepath.Join(p.Dir, "data_stream", dir, "elasticsearch", "ingest_pipeline", "default.json")
		if b, err := os.ReadFile(pipelineFile); err == nil {
			var pipeline map[string]any
			if err := json.Unmarshal(b, &pipeline); err != nil {
				return nil, fmt.Errorf("%s: %w", pipelineFile, err)
			}
			pipelineName := name + "-" + p.Manifest.Version
			out.Pipelines[pipelineName] = pipeline
			settings["index"].(map[string]any)["default_pipeline"] = pipelineName
		}
		out.ComponentTemplates[name+"@package"] = map[string]any{
			"template": map[string]any{"settings": settings, "mappings": mappings},
			"_meta":    meta,
		}
		composed := []string{"logs@mappings", "logs@settings", name + "@package", ds.Type + "@custom", name + "@custom", "ecs@mappings", ".fleet_globals-1"}
		out.IndexTemplates[name] = map[string]any{
			"priority":       200,
			"index_patterns": []string{name + "-*"},
			"template": map[string]any{
				"settings": map[string]any{"index": map[string]any{}},
				"mappings": map[string]any{"_meta": meta},
			},
			"data_stream":                        map[string]any{},
			"composed_of":                        composed,
			"ignore_missing_component_templates": []string{ds.Type + "@custom", name + "@custom"},
			"_meta":                              meta,
		}
	}
	return out, nil
}

// field is a fields.yml entry.
type field struct {
	Name        string  `yaml:"name"`
	Type        string  `yaml:"type"`
	Description string  `yaml:"description"`
	IgnoreAbove int     `yaml:"ignore_above"`
	Value       any     `yaml:"value"`
	ObjectType  string  `yaml:"object_type"`
	MappingType string  `yaml:"object_type_mapping_type"`
	ScalingFact int     `yaml:"scaling_factor"`
	DateFormat  string  `yaml:"date_format"`
	Enabled     *bool   `yaml:"enabled"`
	Dynamic     any     `yaml:"dynamic"`
	Fields      []field `yaml:"fields"`
	MultiFields []field `yaml:"multi_fields"`
	External    string  `yaml:"external"`
	Example     any     `yaml:"example"`
	Pattern     string  `yaml:"pattern"`
	DocValues   *bool   `yaml:"doc_values"`
	Index       *bool   `yaml:"index"`
}

// dataStreamFields reads every fields/*.yml of a data stream, with dotted
// names expanded into groups and groups of one name merged (Fleet's
// processFields).
func (p *Package) dataStreamFields(dir string, resolveECS func([]byte) ([]byte, error)) ([]field, error) {
	files, err := filepath.Glob(filepath.Join(p.Dir, "data_stream", dir, "fields", "*.yml"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var all []field
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if filepath.Base(f) == "ecs.yml" && resolveECS != nil {
			if b, err = resolveECS(b); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		}
		var fs []field
		if err := yaml.Unmarshal(b, &fs); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, x := range fs {
			if x.External != "" {
				return nil, fmt.Errorf("%s: %s is an `external: %s` reference (give resolveECS)", f, x.Name, x.External)
			}
		}
		all = append(all, fs...)
	}
	return mergeFields(expandFields(all)), nil
}

// expandFields turns "a.b.c" into the group a holding the group b holding c.
func expandFields(fs []field) []field {
	out := make([]field, 0, len(fs))
	for _, f := range fs {
		f.Fields = expandFields(f.Fields)
		parts := strings.Split(f.Name, ".")
		if len(parts) == 1 {
			out = append(out, f)
			continue
		}
		f.Name = parts[len(parts)-1]
		nested := f
		for i := len(parts) - 2; i >= 0; i-- {
			nested = field{Name: parts[i], Type: "group", Fields: []field{nested}}
		}
		out = append(out, nested)
	}
	return out
}

// mergeFields merges groups of one name (a later definition of a leaf
// replaces an earlier one, as Fleet's dedupe does).
func mergeFields(fs []field) []field {
	var out []field
	index := map[string]int{}
	for _, f := range fs {
		i, seen := index[f.Name]
		if !seen {
			index[f.Name] = len(out)
			out = append(out, f)
			continue
		}
		if out[i].Type == "group" && f.Type == "group" {
			out[i].Fields = append(out[i].Fields, f.Fields...)
			continue
		}
		out[i] = f
	}
	for i := range out {
		if out[i].Type == "group" {
			out[i].Fields = mergeFields(out[i].Fields)
		}
	}
	return out
}

func countFields(fs []field) int {
	n := 0
	for _, f := range fs {
		n += 1 + countFields(f.Fields) + countFields(f.MultiFields)
	}
	return n
}

// fieldsLimit is Fleet's getFieldsLimit without an explicit limit.
func fieldsLimit(count int) int {
	if count > 500 {
		return 10000
	}
	return 1000
}

// generateMappings is Fleet's generateMappings for the field types the
// package uses.
func generateMappings(fs []field) map[string]any {
	var dynamic []any
	props := mappingProps(fs, "", &dynamic)
	m := map[string]any{"properties": props}
	if len(dynamic) > 0 {
		m["dynamic_templates"] = dynamic
	}
	return m
}

func mappingProps(fs []field, prefix string, dynamic *[]any) map[string]any {
	props := map[string]any{}
	for _, f := range fs {
		path := f.Name
		if prefix != "" {
			path = prefix + "." + f.Name
		}
		typ := f.Type
		if typ == "" {
			typ = "keyword"
		}
		if typ == "object" && f.ObjectType != "" {
			*dynamic = append(*dynamic, objectTypeTemplate(f, path))
			if !strings.Contains(f.Name, "*") {
				props[f.Name] = map[string]any{"type": "object", "dynamic": true}
			}
			continue
		}
		prop := fieldMapping(f, typ, path, dynamic)
		if prop == nil {
			continue
		}
		if f.Index != nil {
			prop["index"] = *f.Index
		}
		if f.DocValues != nil {
			prop["doc_values"] = *f.DocValues
		}
		if strings.Contains(f.Name, "*") {
			continue
		}
		props[f.Name] = prop
	}
	return props
}

// objectTypeTemplate is the dynamic template of an object field with an
// object_type (its values' mapping), as Fleet writes it.
func objectTypeTemplate(f field, path string) map[string]any {
	dyn := map[string]any{"type": f.ObjectType}
	match := f.MappingType
	switch f.ObjectType {
	case "keyword", "ip", "match_only_text", "text", "wildcard":
		if match == "" {
			match = "string"
		}
	case "long", "byte", "short", "unsigned_long":
		if match == "" {
			match = "long"
		}
	case "integer":
		dyn["type"] = "long"
		if match == "" {
			match = "long"
		}
	case "double", "float", "half_float":
		if match == "" {
			match = "double"
		}
	case "boolean":
		if match == "" {
			match = "boolean"
		}
	case "flattened":
		if match == "" {
			match = "object"
		}
	}
	pathMatch := path
	if !strings.Contains(path, "*") {
		pathMatch = path + ".*"
	}
	return map[string]any{path: map[string]any{"mapping": dyn, "match_mapping_type": match, "path_match": pathMatch}}
}

// fieldMapping is the mapping of a field of type typ (nil for a group
// without fields).
func fieldMapping(f field, typ, path string, dynamic *[]any) map[string]any {
	var prop map[string]any
	switch typ {
	case "group":
		sub := mappingProps(f.Fields, path, dynamic)
		if len(sub) == 0 {
			return nil
		}
		prop = map[string]any{"properties": sub}
		if f.Enabled != nil {
			prop["enabled"] = *f.Enabled
		}
		if f.Dynamic != nil {
			prop["dynamic"] = f.Dynamic
		}
	case "keyword":
		prop = map[string]any{"type": "keyword", "ignore_above": 1024}
		if f.IgnoreAbove > 0 {
			prop["ignore_above"] = f.IgnoreAbove
		}
		if len(f.MultiFields) > 0 {
			prop["fields"] = multiFields(f.MultiFields)
		}
	case "wildcard":
		prop = map[string]any{"type": "wildcard", "ignore_above": 1024}
		if f.IgnoreAbove > 0 {
			prop["ignore_above"] = f.IgnoreAbove
		}
		if len(f.MultiFields) > 0 {
			prop["fields"] = multiFields(f.MultiFields)
		}
	case "text":
		prop = map[string]any{"type": "text"}
		if len(f.MultiFields) > 0 {
			prop["fields"] = multiFields(f.MultiFields)
		}
	case "integer":
		prop = map[string]any{"type": "long"}
	case "scaled_float":
		sf := f.ScalingFact
		if sf == 0 {
			sf = 1000
		}
		prop = map[string]any{"type": "scaled_float", "scaling_factor": sf}
	case "constant_keyword":
		prop = map[string]any{"type": "constant_keyword"}
		if f.Value != nil {
			prop["value"] = f.Value
		}
	case "date":
		prop = map[string]any{"type": "date"}
		if f.DateFormat != "" {
			prop["format"] = f.DateFormat
		}
		if path == "@timestamp" {
			prop["ignore_malformed"] = false
		}
	case "object":
		prop = map[string]any{"type": "object"}
		if f.Enabled != nil {
			prop["enabled"] = *f.Enabled
		}
		if f.Dynamic != nil {
			prop["dynamic"] = f.Dynamic
		}
	default:
		prop = map[string]any{"type": typ}
	}
	return prop
}

func multiFields(fs []field) map[string]any {
	out := map[string]any{}
	for _, f := range fs {
		switch f.Type {
		case "keyword":
			m := map[string]any{"type": "keyword", "ignore_above": 1024}
			if f.IgnoreAbove > 0 {
				m["ignore_above"] = f.IgnoreAbove
			}
			out[f.Name] = m
		case "text", "long", "double", "match_only_text":
			out[f.Name] = map[string]any{"type": f.Type}
		}
	}
	return out
}
