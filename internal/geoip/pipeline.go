// Package geoip is teleportbeat's ingest pipeline: event.ingested, and
// GeoIP and ASN for the addresses of Teleport events, added by Elasticsearch's geoip processor
// as Elastic's own integrations do (its GeoLite2 databases are downloaded
// by Elasticsearch; air-gapped clusters need them installed, see README).
//
// The pipeline never keeps an event out of the index: each processor
// ignores a missing address, and a failure tags the event
// (teleportbeat_geoip_failure) with the reason in error.message.
package geoip

import (
	"errors"
	"fmt"

	"github.com/elastic/beats/v7/libbeat/esleg/eslegclient"
)

// Name is the pipeline's name for a teleportbeat version: a new version
// installs its own, as it does its index template.
func Name(version string) string { return "teleportbeat-" + version + "-geoip" }

// FailureTag tags an event a processor failed on.
const FailureTag = "teleportbeat_geoip_failure"

// addressFields are the ECS address field sets enriched: the mapper fills
// source (the client of Teleport) and destination (the node, database or
// desktop reached).
var addressFields = []string{"source", "destination"}

// Pipeline is the pipeline's definition, as PUT _ingest/pipeline takes it.
func Pipeline(version string) map[string]any {
	// event.ingested first: when Elasticsearch took the event, which
	// detection rules read (timestamp_override) so that an event stored
	// long after its time still alerts, as Elastic's integrations set it.
	procs := []any{map[string]any{"set": map[string]any{
		"tag": "event-ingested", "field": "event.ingested", "value": "{{{_ingest.timestamp}}}",
	}}}
	for _, f := range addressFields {
		procs = append(procs,
			map[string]any{"geoip": map[string]any{
				"tag":            "geoip-" + f,
				"field":          f + ".ip",
				"target_field":   f + ".geo",
				"ignore_missing": true,
			}},
			map[string]any{"geoip": map[string]any{
				"tag":            "asn-" + f,
				"database_file":  "GeoLite2-ASN.mmdb",
				"field":          f + ".ip",
				"target_field":   f + ".as",
				"properties":     []string{"asn", "organization_name", "network"},
				"ignore_missing": true,
			}},
			// The ASN database's names, in ECS's places.
			map[string]any{"rename": map[string]any{
				"field": f + ".as.asn", "target_field": f + ".as.number", "ignore_missing": true,
			}},
			map[string]any{"rename": map[string]any{
				"field": f + ".as.organization_name", "target_field": f + ".as.organization.name", "ignore_missing": true,
			}},
			map[string]any{"remove": map[string]any{
				"field": f + ".as.network", "ignore_missing": true,
			}},
		)
	}
	return map[string]any{
		"description": fmt.Sprintf("teleportbeat %s: GeoIP and ASN of the source and destination addresses of Teleport events", version),
		"processors":  procs,
		"on_failure": []any{
			map[string]any{"append": map[string]any{"field": "tags", "value": FailureTag, "allow_duplicates": false}},
			map[string]any{"set": map[string]any{"field": "error.message", "value": "{{{ _ingest.on_failure_message }}}"}},
		},
		"_meta": map[string]any{"managed_by": "teleportbeat", "version": version},
	}
}

// Fields are the fields the pipeline writes (their mapping must be in the
// index template).
func Fields() []string {
	var out []string
	for _, f := range addressFields {
		for _, g := range []string{"geo.city_name", "geo.continent_name", "geo.country_iso_code", "geo.country_name",
			"geo.location", "geo.region_iso_code", "geo.region_name", "as.number", "as.organization.name"} {
			out = append(out, f+"."+g)
		}
	}
	return append(out, "tags", "error.message", "event.ingested")
}

// Install puts the pipeline into Elasticsearch: always with overwrite (as
// `teleportbeat setup` does), else only when it is missing (as the output
// does on each connection). It reports whether it wrote the pipeline.
func Install(conn *eslegclient.Connection, version string, overwrite bool) (bool, error) {
	name := Name(version)
	if !overwrite {
		exists, err := conn.PipelineExists(name)
		if err != nil {
			return false, fmt.Errorf("check for ingest pipeline %s: %w", name, err)
		}
		if exists {
			return false, nil
		}
	}
	status, _, err := conn.CreatePipeline(name, nil, Pipeline(version))
	if err != nil || status >= 300 {
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		hint := ""
		if status == 401 || status == 403 {
			hint = " (the user needs the manage_ingest_pipelines cluster privilege: run `teleportbeat setup --pipelines` once as an administrator, or set output.elasticsearch.pipeline: \"\" to ship without GeoIP)"
		}
		return false, errors.Join(fmt.Errorf("install ingest pipeline %s%s", name, hint), err)
	}
	return true, nil
}
