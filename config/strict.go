package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	conf "github.com/elastic/elastic-agent-libs/config"
)

// libbeatKeys are keys libbeat itself sets in the beat's section, not the
// user: `setup` without flags sets config.modules.force_enable_module_filesets
// (for Filebeat's modules) before it creates the beater.
var libbeatKeys = map[string]bool{"config.modules.force_enable_module_filesets": true}

// CheckKeys reports keys of section that spec (a struct with `config`
// tags) does not define, naming each with its full path under prefix.
func CheckKeys(section *conf.C, spec any, prefix string) error {
	var unknown []string
	// A child section's keys carry the section's own path.
	base := section.Path()
	for _, k := range section.FlattenedKeys() {
		if base != "" {
			k = strings.TrimPrefix(k, base+".")
		}
		if libbeatKeys[k] {
			continue
		}
		if !knownPath(reflect.TypeOf(spec), strings.Split(k, ".")) {
			unknown = append(unknown, prefix+"."+k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if len(unknown) == 1 {
		return fmt.Errorf("%s: unknown setting (see teleportbeat.reference.yml for the settings that exist)", unknown[0])
	}
	return fmt.Errorf("unknown settings: %s (see teleportbeat.reference.yml for the settings that exist)", strings.Join(unknown, ", "))
}

func knownPath(t reflect.Type, path []string) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if len(path) == 0 {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("config"), ",")
			if strings.Contains(opts, "ignore") {
				continue
			}
			if strings.Contains(opts, "inline") {
				if knownPath(f.Type, path) {
					return true
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if name == path[0] {
				return knownPath(f.Type, path[1:])
			}
		}
		return false
	case reflect.Slice, reflect.Array:
		// A list may be written as a single value (addr: "host:443").
		if _, err := strconv.Atoi(path[0]); err == nil {
			return knownPath(t.Elem(), path[1:])
		}
		return knownPath(t.Elem(), path)
	case reflect.Map, reflect.Interface:
		return true
	default:
		return false
	}
}
