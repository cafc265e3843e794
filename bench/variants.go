package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// variant is one contender: a beat and its settings.
type variant struct {
	name string
	beat string // "teleportbeat" or "filebeat"
	what string
	// config returns the beat's config file and the settings (-E) given on
	// top of it, except the output's.
	config func(d *dataset, o options) (string, []string)
	// latency is added to every Teleport page and export chunk.
	latency bool
}

// teleportbeatConfig runs teleportbeat as a user would: with the shipped
// teleportbeat.yml (and so its tuned defaults), the connection given on
// the command line.
func teleportbeatConfig(extra ...string) func(d *dataset, o options) (string, []string) {
	return func(d *dataset, o options) (string, []string) {
		return o.shippedConfig, append([]string{
			fmt.Sprintf("teleportbeat.teleport.addr=[%s]", d.srv.Addr()),
			"teleportbeat.teleport.identity_file=" + d.identity,
			"teleportbeat.audit.start_time=" + d.start.Format(time.RFC3339),
		}, append(slices.Clone(extra), o.set...)...)
	}
}

var variants = []variant{
	{
		name: "filebeat", beat: "filebeat",
		what: "Filebeat with default settings, filestream input with the ndjson parser, reading the same events from a file",
		config: func(d *dataset, _ options) (string, []string) {
			return fmt.Sprintf(`filebeat.inputs:
  - type: filestream
    id: teleport-audit
    paths: [%q]
    parsers:
      - ndjson:
          target: ""
          add_error_key: true
`, d.ndjson), nil
		},
	},
	{
		name: "teleportbeat", beat: "teleportbeat",
		what:   "teleportbeat with the shipped teleportbeat.yml: complete past days through the export API",
		config: teleportbeatConfig(),
	},
	{
		name: "teleportbeat-search", beat: "teleportbeat",
		what:   "teleportbeat reading with searches only (use_export_api: false), as on clusters without the export API",
		config: teleportbeatConfig("teleportbeat.audit.use_export_api=false"),
	},
	{
		name: "teleportbeat+latency", beat: "teleportbeat",
		what:    "teleportbeat (export API), every export chunk stream and search page delayed",
		config:  teleportbeatConfig(),
		latency: true,
	},
	{
		name: "teleportbeat-search+latency", beat: "teleportbeat",
		what:    "teleportbeat (searches only), every search page delayed",
		config:  teleportbeatConfig("teleportbeat.audit.use_export_api=false"),
		latency: true,
	},
}

func variantNames() string {
	var names []string
	for _, v := range variants {
		names = append(names, v.name)
	}
	return strings.Join(names, ",")
}

func selectVariants(list string) ([]string, error) {
	if list == "" {
		var all []string
		for _, v := range variants {
			all = append(all, v.name)
		}
		return all, nil
	}
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if !slices.ContainsFunc(variants, func(v variant) bool { return v.name == name }) {
			return nil, fmt.Errorf("-variants: unknown variant %q (known: %s)", name, variantNames())
		}
		out = append(out, name)
	}
	return out, nil
}

func variantByName(name string) variant {
	for _, v := range variants {
		if v.name == name {
			return v
		}
	}
	panic("unknown variant " + name)
}
