package kibana

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v2"

	"github.com/teleportbeat/teleportbeat/internal/testkit/fieldsyml"
	"github.com/teleportbeat/teleportbeat/internal/testkit/kql"
)

type yamlField struct {
	Name   string      `yaml:"name"`
	Type   string      `yaml:"type"`
	Fields []yamlField `yaml:"fields"`
}

// definedFields reads every field path of fields.yml, with its type.
func definedFields(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../../fields.yml")
	require.NoError(t, err)
	var top []struct {
		Fields []yamlField `yaml:"fields"`
	}
	require.NoError(t, yaml.Unmarshal(b, &top))
	out := map[string]string{}
	var walk func(prefix string, fs []yamlField)
	walk = func(prefix string, fs []yamlField) {
		for _, f := range fs {
			p := f.Name
			if prefix != "" {
				p = prefix + "." + f.Name
			}
			if f.Type == "group" || (f.Type == "" && len(f.Fields) > 0) {
				walk(p, f.Fields)
				continue
			}
			out[p] = f.Type
		}
	}
	for _, k := range top {
		walk("", k.Fields)
	}
	return out
}

type savedObject struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Attributes map[string]any `json:"attributes"`
	References []Reference    `json:"references"`
}

// loadObjects reads the committed kibana/7 tree.
func loadObjects(t *testing.T) map[string]savedObject {
	t.Helper()
	out := map[string]savedObject{}
	root := filepath.Join("..", "..", "..", "kibana", "7")
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		if info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var o savedObject
		require.NoError(t, json.Unmarshal(b, &o), "%s is not valid JSON", path)
		dir := filepath.Base(filepath.Dir(path))
		require.Equal(t, "dashboard", dir, "%s: libbeat imports the files of kibana/7/dashboard", path)
		require.Equal(t, strings.TrimSuffix(filepath.Base(path), ".json"), o.ID, path)
		require.Contains(t, []string{"dashboard", "search"}, o.Type, path)
		title, _ := o.Attributes["title"].(string)
		require.NotEmpty(t, title, path)
		out[o.Type+"/"+o.ID] = o
		return nil
	})
	require.NoError(t, err)
	return out
}

var (
	kqlField  = regexp.MustCompile(`([A-Za-z_@][A-Za-z0-9_.@]*)\s*:`)
	kqlQuoted = regexp.MustCompile(`"(\\.|[^"\\])*"`)
)

// fieldsUsed lists the fields an object reads over teleportbeat's data
// view: Lens columns, search columns, the fields of every KQL query and
// of the maps' layers; the fields of Lens panels over the alerts index
// (their own ad hoc data view) are in alerts.
func fieldsUsed(o savedObject) (out, alerts []string) {
	var walk func(v any, into *[]string)
	walk = func(v any, into *[]string) {
		switch x := v.(type) {
		case map[string]any:
			if _, adHoc := x["adHocDataViews"]; adHoc && into == &out {
				walk(x, &alerts)
				return
			}
			if f, ok := x["sourceField"].(string); ok && f != "Records" && f != "___records___" {
				*into = append(*into, f)
			}
			if f, ok := x["geoField"].(string); ok {
				*into = append(*into, f)
			}
			if q, ok := x["query"].(string); ok {
				if lang, _ := x["language"].(string); lang == "kuery" {
					for _, m := range kqlField.FindAllStringSubmatch(kqlQuoted.ReplaceAllString(q, `""`), -1) {
						*into = append(*into, m[1])
					}
				}
			}
			if l, ok := x["layerListJSON"].(string); ok {
				var layers any
				if json.Unmarshal([]byte(l), &layers) == nil {
					walk(layers, into)
				}
			}
			for _, e := range x {
				walk(e, into)
			}
		case []any:
			for _, e := range x {
				walk(e, into)
			}
		}
	}
	walk(o.Attributes, &out)
	if cols, ok := o.Attributes["columns"].([]any); ok && o.Type == "search" {
		for _, c := range cols {
			out = append(out, c.(string))
		}
	}
	return out, alerts
}

// alertFields are the fields of Kibana Security's alerts the alert panels
// read (Kibana's alerts-as-data fields, @kbn/rule-data-utils:
// ALERT_RULE_NAME, ALERT_SEVERITY, ALERT_WORKFLOW_STATUS, ALERT_RULE_TAGS).
var alertFields = map[string]bool{
	"@timestamp": true, "kibana.alert.rule.name": true, "kibana.alert.severity": true,
	"kibana.alert.workflow_status": true, "kibana.alert.rule.tags": true,
}

func TestSavedObjectsAreValidAndComplete(t *testing.T) {
	objs := loadObjects(t)
	defined := definedFields(t)
	require.Greater(t, len(defined), 1000)

	types := map[string]int{}
	for key, o := range objs {
		types[o.Type]++
		used, alerts := fieldsUsed(o)
		for _, f := range used {
			_, ok := defined[f]
			require.True(t, ok, "%s (%v) uses field %q, which fields.yml does not define", key, o.Attributes["title"], f)
		}
		for _, f := range alerts {
			require.True(t, alertFields[f], "%s (%v) reads %q of the alerts, not a field of Kibana's alerts", key, o.Attributes["title"], f)
		}
		for _, r := range o.References {
			require.Equal(t, "index-pattern", r.Type, "%s: dashboards hold their panels by value; only data views are referenced", key)
			require.Equal(t, IndexPattern, r.ID, "%s: the data view of the data stream", key)
		}
	}
	require.Equal(t, 3, types["dashboard"])
	require.Equal(t, 2, types["search"], "a saved search per dataset")
	require.Zero(t, types["lens"], "no visualization stands apart from its dashboard")
}

// panels returns a dashboard's panels.
func panels(o savedObject) []map[string]any {
	var out []map[string]any
	for _, p := range o.Attributes["panelsJSON"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

// TestEveryPanelShowsTheVisualizationItsTitleNames: within a dashboard,
// every panel has its own id and title, holds the visualization of that
// title (by value), and every data view reference of that visualization
// has its counterpart among the dashboard's references. (Two panels once
// shared a title, and so an id: the Audit Overview showed its privileged
// changes count twice and lost the table of who changed what.)
func TestEveryPanelShowsTheVisualizationItsTitleNames(t *testing.T) {
	for key, o := range loadObjects(t) {
		if o.Type != "dashboard" {
			continue
		}
		refs := map[string]bool{}
		for _, r := range o.References {
			refs[r.Name] = true
		}
		ids, titles := map[string]bool{}, map[string]bool{}
		ps := panels(o)
		require.GreaterOrEqual(t, len(ps), 9, key)
		for _, p := range ps {
			idx := p["panelIndex"].(string)
			require.False(t, ids[idx], "%s: panel id %s twice", key, idx)
			ids[idx] = true
			require.Equal(t, idx, p["gridData"].(map[string]any)["i"], key)
			title := p["title"].(string)
			require.False(t, titles[title], "%s: two panels titled %q", key, title)
			titles[title] = true
			attrs := p["embeddableConfig"].(map[string]any)["attributes"].(map[string]any)
			require.Equal(t, title, attrs["title"], "%s: panel %q shows another visualization", key, title)
			switch p["type"] {
			case "map":
				// Every layer's data view is referenced.
				var layers []map[string]any
				require.NoError(t, json.Unmarshal([]byte(attrs["layerListJSON"].(string)), &layers))
				n := 0
				for _, l := range layers {
					if src, ok := l["sourceDescriptor"].(map[string]any)["indexPatternRefName"].(string); ok {
						n++
						require.True(t, refs[idx+":"+src], "%s: map %q layer %v has no dashboard reference", key, title, l["label"])
					}
				}
				require.GreaterOrEqual(t, n, 1, "%s: map %q has a data layer", key, title)
			default:
				require.Equal(t, "lens", attrs["type"])
				if state := attrs["state"].(map[string]any); state["adHocDataViews"] != nil {
					// Over the alerts: its own data view, every layer's
					// reference internal to it.
					dvs := state["adHocDataViews"].(map[string]any)
					require.Len(t, dvs, 1)
					for id, dv := range dvs {
						require.Equal(t, AlertsIndex, dv.(map[string]any)["title"])
						for _, r := range state["internalReferences"].([]any) {
							require.Equal(t, id, r.(map[string]any)["id"])
						}
					}
					require.Contains(t, state["query"].(map[string]any)["query"], "Data Source: Teleport", "%s: only teleportbeat's alerts", title)
				}
			}
			for _, r := range attrs["references"].([]any) {
				name := r.(map[string]any)["name"].(string)
				require.True(t, refs[idx+":"+name], "%s: panel %q reference %s has no dashboard reference", key, title, name)
			}
			_, isMissingPanelRef := p["panelRefName"]
			require.False(t, isMissingPanelRef, "%s: panel %q is by reference", key, title)
		}
		filters := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)["searchSourceJSON"].(map[string]any)["filter"].([]any)
		require.Len(t, filters, 1, "%s: filtered on its data", key)
	}
}

// TestDurationsAreShownAsDurations: event.duration is in nanoseconds and
// the certificate TTL in seconds; every metric of them is formatted as a
// duration in that unit (the average session duration was once shown as
// milliseconds).
func TestDurationsAreShownAsDurations(t *testing.T) {
	n := 0
	for _, o := range loadObjects(t) {
		if o.Type != "dashboard" {
			continue
		}
		for _, p := range panels(o) {
			state, _ := p["embeddableConfig"].(map[string]any)["attributes"].(map[string]any)["state"].(map[string]any)
			if state == nil || state["adHocDataViews"] != nil {
				continue // a map, or the alerts
			}
			for _, l := range state["datasourceStates"].(map[string]any)["indexpattern"].(map[string]any)["layers"].(map[string]any) {
				for _, c := range l.(map[string]any)["columns"].(map[string]any) {
					col := c.(map[string]any)
					unit := map[string]string{"event.duration": "nanoseconds", "teleport.certificate.ttl": "seconds"}[fmt.Sprint(col["sourceField"])]
					if unit == "" || col["isBucketed"] == true {
						continue
					}
					n++
					format := col["params"].(map[string]any)["format"].(map[string]any)
					require.Equal(t, "duration", format["id"], "%v", col["label"])
					require.Equal(t, unit, format["params"].(map[string]any)["inputFormat"], "%v", col["label"])
				}
			}
		}
	}
	require.GreaterOrEqual(t, n, 4)
}

// TestGeneratedObjectsMatchCommittedFiles: the files are what the code
// defines (CI also checks this through the staleness test).
func TestGeneratedObjectsMatchCommittedFiles(t *testing.T) {
	files, err := Files()
	require.NoError(t, err)
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", "..", path))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), path)
	}
	require.Len(t, loadObjects(t), len(files), "no stray files under kibana/7")
}

func TestDashboardsShowWhatTheyPromise(t *testing.T) {
	titles := map[string][]string{}
	for _, o := range loadObjects(t) {
		if o.Type != "dashboard" {
			continue
		}
		for _, p := range panels(o) {
			titles[o.Attributes["title"].(string)] = append(titles[o.Attributes["title"].(string)], p["title"].(string))
		}
	}
	overview := strings.Join(titles["[Teleportbeat] Teleport Audit Overview"], "\n")
	for _, want := range []string{"Events over time by type", "Events over time by outcome", "Top users", "Top source IPs", "Failed logins",
		"Privileged changes [", "Privileged changes (count)", "Access requests", "Access denied by resource", "Access denied over time by resource kind",
		"Locks and MFA events", "Certificates issued", "Access request reviews",
		"Logins by source country", "Logins by network (ASN)", "First seen source countries per user"} {
		require.Contains(t, overview, want)
	}
	security := strings.Join(titles["[Teleportbeat] Teleport Security"], "\n")
	for _, want := range []string{"Login sources", "Alerts by rule", "Alerts over time", "Privileged OS logins", "Machine ID bot activity",
		"Machine ID bot joins", "Certificate authentication failures"} {
		require.Contains(t, security, want)
	}
	sessions := strings.Join(titles["[Teleportbeat] Teleport Sessions"], "\n")
	for _, want := range []string{"Sessions by user and node", "Session duration", "Commands run"} {
		require.Contains(t, sessions, want)
	}
}

// TestQueriesParseWithTheTemplatesTypes parses every KQL query of the
// dashboards, searches and map layers with the KQL evaluator the rules use:
// each field exists with a type its values fit (a quoted "true" on a
// boolean, or a word on an ip field, fails).
func TestQueriesParseWithTheTemplatesTypes(t *testing.T) {
	types, err := fieldsyml.Types("../../../fields.yml")
	require.NoError(t, err)
	n := 0
	var walk func(v any, alerts bool)
	walk = func(v any, alerts bool) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["adHocDataViews"]; ok {
				alerts = true
			}
			if q, ok := x["query"].(string); ok && x["language"] == "kuery" && q != "" && !alerts {
				_, err := kql.Parse(q, kql.Types(types))
				require.NoError(t, err)
				n++
			}
			if l, ok := x["layerListJSON"].(string); ok {
				var layers any
				require.NoError(t, json.Unmarshal([]byte(l), &layers))
				walk(layers, alerts)
			}
			for _, e := range x {
				walk(e, alerts)
			}
		case []any:
			for _, e := range x {
				walk(e, alerts)
			}
		}
	}
	for _, o := range loadObjects(t) {
		walk(o.Attributes, false)
	}
	require.GreaterOrEqual(t, n, 40)
}
