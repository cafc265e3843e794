package rules

import (
	"strconv"
	"strings"
)

// introduced are the rule fields a Kibana older than the version given
// does not take (per rule type; "" for every type), as Elastic's rule
// schemas for each version have them (detection-rules' api_schemas,
// checked in the tests against every version the Fleet package claims).
// For an older Kibana, ForKibana leaves them out, as detection-rules does
// when it builds a rule for an older stack.
var introduced = map[string]map[string]string{
	"investigation_fields": {"": "8.14"},
	"data_view_id":         {"": "8.14"},
	// Suppression of new terms alerts came with 8.14 (detection-rules'
	// min_compat); query and threshold rules have it since 8.8 and 8.12.
	"alert_suppression": {"new_terms": "8.14", "eql": "8.14"},
}

// ForKibana returns a rule's object for a Kibana version ("8.13.4"):
// without the fields that version does not take. An unknown version
// ("") gets everything.
func ForKibana(obj map[string]any, kibana string) map[string]any {
	out := make(map[string]any, len(obj))
	ty, _ := obj["type"].(string)
	for k, v := range obj {
		if since, ok := introduced[k]; ok && kibana != "" {
			min := since[ty]
			if min == "" {
				min = since[""]
			}
			if min != "" && olderThan(kibana, min) {
				continue
			}
		}
		out[k] = v
	}
	return out
}

// olderThan reports whether version a ("8.13.4", "9.0.0-SNAPSHOT") is older
// than the minor version b ("8.14").
func olderThan(a, b string) bool {
	pa, pb := majorMinor(a), majorMinor(b)
	if pa[0] != pb[0] {
		return pa[0] < pb[0]
	}
	return pa[1] < pb[1]
}

func majorMinor(v string) [2]int {
	v, _, _ = strings.Cut(v, "-")
	var out [2]int
	for i, s := range strings.SplitN(v, ".", 3) {
		if i > 1 {
			break
		}
		out[i], _ = strconv.Atoi(s)
	}
	return out
}
