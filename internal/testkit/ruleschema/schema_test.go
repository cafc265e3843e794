package ruleschema

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionsCoverWhatThePackageClaims(t *testing.T) {
	vs := Versions()
	require.Equal(t, "8.13", vs[0])
	for _, want := range []string{"8.14", "8.19", "9.0", "9.3"} {
		require.Contains(t, vs, want)
	}
	require.Equal(t, "8.19", Minor("8.19.4"))
	require.Equal(t, "9.3", Minor("9.3.0-SNAPSHOT"))
	require.Equal(t, vs[len(vs)-1], Minor("12.0.0"), "a newer Kibana gets the newest schema")
	require.Empty(t, Minor("8.12.2"))
	for _, v := range vs {
		for _, ty := range Types {
			_, err := Load(v, ty)
			require.NoError(t, err, "%s %s", v, ty)
		}
	}
}

func minimal(ty string) map[string]any {
	r := map[string]any{
		"rule_id": "2f0a6a5e-5a3b-4c8e-9a3e-0f6d1c2b3a4d", "name": "Teleport: x", "description": "x",
		"type": ty, "language": "kuery", "query": `event.action: "user.login"`,
		"risk_score": 21, "severity": "low", "author": []any{"teleportbeat"},
	}
	switch ty {
	case "threshold":
		r["threshold"] = map[string]any{"field": []any{"source.ip"}, "value": 5}
	case "eql":
		r["language"] = "eql"
		r["query"] = `any where event.action == "user.login"`
	case "new_terms":
		r["new_terms_fields"] = []any{"user.name"}
		r["history_window_start"] = "now-14d"
	}
	return r
}

func TestTheSchemasRefuseWhatKibanaRefuses(t *testing.T) {
	for _, v := range Versions() {
		for _, ty := range Types {
			s, err := Load(v, ty)
			require.NoError(t, err)
			require.NoError(t, s.Validate(minimal(ty)), "%s %s", v, ty)

			r := minimal(ty)
			r["required_fields"] = []any{map[string]any{"name": "event.action", "type": "keyword"}}
			require.ErrorContains(t, s.Validate(r), "ecs", "%s %s: a required field without ecs (what 8.13 and 8.14 refused)", v, ty)
			r["required_fields"] = []any{map[string]any{"name": "event.action", "type": "keyword", "ecs": true}}
			require.NoError(t, s.Validate(r), "%s %s", v, ty)

			r = minimal(ty)
			r["related_integrations"] = []any{map[string]any{"package": "teleportbeat"}}
			require.Error(t, s.Validate(r), "%s %s: an integration without its version", v, ty)

			r = minimal(ty)
			delete(r, "risk_score")
			require.ErrorContains(t, s.Validate(r), "risk_score", "%s %s", v, ty)

			r = minimal(ty)
			r["severity"] = "urgent"
			require.ErrorContains(t, s.Validate(r), "severity", "%s %s", v, ty)
		}
	}
	s, err := Load("8.13", "query")
	require.NoError(t, err)
	r := minimal("query")
	r["investigation_fields"] = map[string]any{"field_names": []any{"user.name"}}
	require.Equal(t, []string{"investigation_fields"}, s.Unknown(r), "8.13's schema has no investigation_fields")
}

// TestTheRepairOnlyRestoresWhatTheGeneratorLost shows what the 8.19 and
// 9.1+ schemas lost (a related integration's version, which Kibana
// requires, is refused; a required field's type too), and that the repair
// replaces only the fields whose nested schema differs from the last good
// version's.
func TestTheRepairOnlyRestoresWhatTheGeneratorLost(t *testing.T) {
	for _, v := range Versions() {
		donor := repairDonor(v)
		for _, ty := range Types {
			s, err := Load(v, ty)
			require.NoError(t, err)
			if donor == "" {
				require.Empty(t, s.Repaired, v)
				continue
			}
			raw, err := Raw(v, ty)
			require.NoError(t, err)
			good, err := Raw(donor, ty)
			require.NoError(t, err)
			props, gprops := raw["properties"].(map[string]any), good["properties"].(map[string]any)
			// The raw schema refuses what Kibana takes, and takes what
			// Kibana refuses.
			items := props["related_integrations"].(map[string]any)["items"].(map[string]any)
			require.NotContains(t, items["properties"], "version", "%s %s: the generator lost related_integrations.version", v, ty)
			items = props["required_fields"].(map[string]any)["items"].(map[string]any)
			require.NotContains(t, items["properties"], "type", "%s %s: the generator lost required_fields.type", v, ty)
			require.NotContains(t, raw["required"], "risk_score", "%s %s", v, ty)
			// Only the repairable fields differ beyond notation, and those
			// 9.3 made stricter (a version and max_signals of at least 1,
			// a risk score of 0 to 100, a UUID rule_id, an interval such
			// as 5m, non-empty investigation fields), which keep their own.
			stricter := []string{"version", "risk_score", "rule_id", "interval", "max_signals", "investigation_fields"}
			for f, p := range props {
				if gp, ok := gprops[f]; ok && !slices.Contains(repairable, f) {
					require.True(t, reflect.DeepEqual(norm(p), norm(gp)) || slices.Contains(stricter, f),
						"%s %s: %s differs from %s's and is not repaired", v, ty, f, donor)
				}
			}
			for _, f := range s.Repaired {
				require.True(t, slices.Contains(repairable, f) || len(f) > 9 && f[:9] == "required:", f)
			}
			// A new field of the later version keeps its own definition.
			if _, ok := props["response_actions"]; ok {
				require.Contains(t, s.Properties, "response_actions")
			}
		}
	}
}

// norm drops what differs only in notation: descriptions, enumNames,
// min_compat, and a type given as a one-item list.
func norm(x any) any {
	switch x := x.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, v := range x {
			if k != "description" && k != "enumNames" && k != "min_compat" {
				out[k] = norm(v)
			}
		}
		return out
	case []any:
		if len(x) == 1 {
			if s, ok := x[0].(string); ok {
				return s
			}
		}
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = norm(v)
		}
		return out
	}
	b, _ := json.Marshal(x)
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}
