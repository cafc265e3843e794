// Package fieldsyml reads fields.yml, the source of the index template,
// as a flat list of field paths and their Elasticsearch types, for the
// tests that check that what teleportbeat writes or queries (ingest
// pipeline, detection rules, dashboards) is mapped as assumed.
package fieldsyml

import (
	"fmt"

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
