package kibana

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v2"
)

type yamlField struct {
	Name   string      `yaml:"name"`
	Type   string      `yaml:"type"`
	Fields []yamlField `yaml:"fields"`
}

// definedFields reads every field path of fields.yml, with its type.
func definedFields(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../fields.yml")
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
	root := filepath.Join("..", "..", "kibana", "7")
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
		require.Equal(t, dir, o.Type, "%s: a %s object in the %s directory", path, o.Type, dir)
		require.Equal(t, strings.TrimSuffix(filepath.Base(path), ".json"), o.ID, path)
		require.Contains(t, []string{"dashboard", "lens", "search"}, o.Type, path)
		title, _ := o.Attributes["title"].(string)
		require.NotEmpty(t, title, path)
		out[o.Type+"/"+o.ID] = o
		return nil
	})
	require.NoError(t, err)
	return out
}

var kqlField = regexp.MustCompile(`([A-Za-z_@][A-Za-z0-9_.@]*)\s*:`)

// fieldsUsed lists the fields an object reads: Lens columns, search
// columns and the fields of every KQL query.
func fieldsUsed(o savedObject) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if f, ok := x["sourceField"].(string); ok && f != "Records" {
				out = append(out, f)
			}
			if q, ok := x["query"].(string); ok {
				if lang, _ := x["language"].(string); lang == "kuery" {
					for _, m := range kqlField.FindAllStringSubmatch(q, -1) {
						out = append(out, m[1])
					}
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(o.Attributes)
	if cols, ok := o.Attributes["columns"].([]any); ok && o.Type == "search" {
		for _, c := range cols {
			out = append(out, c.(string))
		}
	}
	return out
}

func TestSavedObjectsAreValidAndComplete(t *testing.T) {
	objs := loadObjects(t)
	defined := definedFields(t)
	require.Greater(t, len(defined), 1000)

	types := map[string]int{}
	for key, o := range objs {
		types[o.Type]++
		for _, f := range fieldsUsed(o) {
			_, ok := defined[f]
			require.True(t, ok, "%s (%v) uses field %q, which fields.yml does not define", key, o.Attributes["title"], f)
		}
		for _, r := range o.References {
			if r.Type == "index-pattern" {
				require.Equal(t, IndexPattern, r.ID, "%s: the data view of the data stream", key)
				continue
			}
			_, ok := objs[r.Type+"/"+r.ID]
			require.True(t, ok, "%s references %s/%s, which does not exist", key, r.Type, r.ID)
		}
		if o.Type == "dashboard" {
			panels := o.Attributes["panelsJSON"].([]any)
			require.NotEmpty(t, panels)
			names := map[string]bool{}
			for _, r := range o.References {
				names[r.Name] = true
			}
			for _, p := range panels {
				ref := p.(map[string]any)["panelRefName"].(string)
				idx := p.(map[string]any)["panelIndex"].(string)
				require.True(t, names[idx+":"+ref], "%s: panel %s has no reference", key, idx)
			}
		}
	}
	require.Equal(t, 2, types["dashboard"])
	require.Equal(t, 2, types["search"], "a saved search per dataset")
	require.Greater(t, types["lens"], 15)
}

// TestGeneratedObjectsMatchCommittedFiles: the files are what the code
// defines (CI also checks this through the staleness test).
func TestGeneratedObjectsMatchCommittedFiles(t *testing.T) {
	files, err := Files()
	require.NoError(t, err)
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", path))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), path)
	}
	require.Len(t, loadObjects(t), len(files), "no stray files under kibana/7")
}

func TestDashboardsShowWhatTheyPromise(t *testing.T) {
	objs := loadObjects(t)
	titles := map[string][]string{}
	for _, o := range objs {
		if o.Type != "dashboard" {
			continue
		}
		for _, r := range o.References {
			titles[o.Attributes["title"].(string)] = append(titles[o.Attributes["title"].(string)], objs[r.Type+"/"+r.ID].Attributes["title"].(string))
		}
	}
	overview := strings.Join(titles["[Teleportbeat] Teleport Audit Overview"], "\n")
	for _, want := range []string{"Events over time by type", "Events over time by outcome", "Top users", "Top source IPs", "Failed logins", "Privileged changes", "Access requests"} {
		require.Contains(t, overview, want)
	}
	sessions := strings.Join(titles["[Teleportbeat] Teleport Sessions"], "\n")
	for _, want := range []string{"Sessions by user and node", "Session duration", "Commands run"} {
		require.Contains(t, sessions, want)
	}
}
