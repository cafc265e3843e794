package geoip

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/fieldsyml"
)

// Every field the pipeline writes is in the index template, with the type
// its processor writes (a geo_point for the location, a number for the
// ASN): otherwise Elasticsearch maps it dynamically, or refuses it.
func TestPipelineWritesOnlyTemplateFields(t *testing.T) {
	types, err := fieldsyml.Types("../../fields.yml")
	require.NoError(t, err)
	require.Equal(t, "ip", types["source.ip"], "fields.yml is read")
	want := map[string]string{"location": "geo_point", "number": "long", "tags": "keyword", "message": "match_only_text", "ingested": "date"}
	for _, f := range Fields() {
		typ, ok := types[f]
		require.True(t, ok, "%s is in fields.yml", f)
		last := f[strings.LastIndex(f, ".")+1:]
		if w, ok := want[last]; ok {
			require.Equal(t, w, typ, f)
		} else {
			require.Equal(t, "keyword", typ, f)
		}
	}
}

// The processors read and write exactly the fields Fields names, never
// fail an event, and the failure handler tags it.
func TestPipelineProcessors(t *testing.T) {
	b, err := json.Marshal(Pipeline("1.2.3"))
	require.NoError(t, err)
	var p struct {
		Description string                      `json:"description"`
		Processors  []map[string]map[string]any `json:"processors"`
		OnFailure   []map[string]map[string]any `json:"on_failure"`
	}
	require.NoError(t, json.Unmarshal(b, &p))
	require.Contains(t, p.Description, "teleportbeat 1.2.3")
	written := map[string]bool{}
	for _, f := range Fields() {
		written[f] = true
	}
	geoips := 0
	for _, proc := range p.Processors {
		for kind, o := range proc {
			if kind == "set" {
				require.Equal(t, "event.ingested", o["field"])
				require.Equal(t, "{{{_ingest.timestamp}}}", o["value"])
				continue
			}
			require.Equal(t, true, o["ignore_missing"], "%s %v never fails on a missing field", kind, o)
			switch kind {
			case "geoip":
				geoips++
				require.True(t, strings.HasSuffix(o["field"].(string), ".ip"), "reads an ECS ip field")
			case "rename":
				require.True(t, written[o["target_field"].(string)], "%v writes a field of Fields()", o)
			}
		}
	}
	require.Equal(t, 4, geoips, "city and ASN, for source and destination")
	require.Equal(t, FailureTag, p.OnFailure[0]["append"]["value"])
	require.Equal(t, "teleportbeat-1.2.3-geoip", Name("1.2.3"))
}
