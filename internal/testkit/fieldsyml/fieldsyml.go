// Package fieldsyml reads fields.yml, the source of the index template,
// as a flat list of field paths and their Elasticsearch types, for the
// tests that check that what teleportbeat writes or queries (ingest
// pipeline, detection rules, dashboards) is mapped as assumed.
package fieldsyml

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v2"

	"github.com/elastic/beats/v7/libbeat/mapping"
)

// Types maps every leaf field of the fields.yml at path to its type
// ("keyword" when fields.yml leaves it out, as the template does).
func Types(path string) (map[string]string, error) {
	fields, err := mapping.LoadFieldsYaml(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]string{}
	var walk func(prefix string, fs mapping.Fields)
	walk = func(prefix string, fs mapping.Fields) {
		for _, f := range fs {
			name := f.Name
			if prefix != "" {
				name = prefix + "." + f.Name
			}
			switch {
			case f.Type == "group" || (f.Type == "" && len(f.Fields) > 0):
				walk(name, f.Fields)
			case f.Type == "":
				out[name] = "keyword"
			default:
				out[name] = f.Type
			}
		}
	}
	walk("", fields)
	return out, nil
}

// ECS returns the leaf fields fields.yml takes from ECS (its "ecs" key,
// the ECS release libbeat carries): what a detection rule's
// required_fields mark ecs: true.
func ECS(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var keys []struct {
		Key    string  `yaml:"key"`
		Fields []field `yaml:"fields"`
	}
	if err := yaml.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]bool{}
	var walk func(prefix string, fs []field)
	walk = func(prefix string, fs []field) {
		for _, f := range fs {
			name := f.Name
			if prefix != "" {
				name = prefix + "." + f.Name
			}
			if f.Type == "group" || (f.Type == "" && len(f.Fields) > 0) {
				walk(name, f.Fields)
				continue
			}
			out[name] = true
		}
	}
	for _, k := range keys {
		if k.Key == "ecs" {
			walk("", k.Fields)
		}
	}
	return out, nil
}

// field is what ECS needs of a fields.yml entry.
type field struct {
	Name   string  `yaml:"name"`
	Type   string  `yaml:"type"`
	Fields []field `yaml:"fields"`
}
