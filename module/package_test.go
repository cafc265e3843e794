// Package module holds teleportbeat's Fleet integration package
// (teleportbeat/) and the Elastic Agent component spec
// (teleportbeat.spec.yml). This test checks them against the package-spec
// rules that apply to them and against the beat itself.
package module

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
	"gopkg.in/yaml.v2"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/elastic-agent-client/v7/pkg/proto"
	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/agent"
	"github.com/teleportbeat/teleportbeat/internal/build/fleetpkg"
	"github.com/teleportbeat/teleportbeat/internal/build/generate"
	"github.com/teleportbeat/teleportbeat/internal/input"
	"github.com/teleportbeat/teleportbeat/internal/rules"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

const pkgDir = "teleportbeat"

var (
	fieldTypes = []string{"keyword", "constant_keyword", "wildcard", "match_only_text", "text", "date", "date_nanos", "long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long", "boolean", "ip", "geo_point", "object", "nested", "flattened", "group", "alias", "histogram", "binary"}
	platforms  = []string{"container/amd64", "container/arm64", "darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64", "windows/amd64"}
	hbsVarRef  = regexp.MustCompile(`\{\{(?:#(?:if|each|unless)\s+)?([a-z_][a-z0-9_]*)\s*\}\}`)
)

func load(t *testing.T) *fleetpkg.Package {
	t.Helper()
	p, err := fleetpkg.Load(pkgDir)
	require.NoError(t, err)
	return p
}

// TestManifest checks what package-spec cannot know (its own rules are
// applied by TestPackageSpecValidatesThePackage): the package's input is
// the one the component spec declares and teleportbeat runs, and the
// changelog's newest entry is the manifest's version.
func TestManifest(t *testing.T) {
	p := load(t)
	m := p.Manifest
	require.Equal(t, filepath.Base(pkgDir), m.Name, "the package's directory is its name")
	require.Len(t, m.PolicyTemplates, 1)
	for _, pt := range m.PolicyTemplates {
		require.Len(t, pt.Inputs, 1)
		require.Equal(t, agent.InputType, pt.Inputs[0].Type, "the input type is the one the component spec declares and teleportbeat runs")
	}
	var changes []struct {
		Version string `yaml:"version"`
	}
	b, err := os.ReadFile(filepath.Join(pkgDir, "changelog.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &changes))
	require.NotEmpty(t, changes)
	require.Equal(t, m.Version, changes[0].Version, "the changelog's newest entry is the manifest's version")
}

func TestDataStreams(t *testing.T) {
	p := load(t)
	require.Equal(t, generate.DataStreams, p.DataStreamNames())
	datasets := map[string]string{"audit": agent.AuditDataset, "session": agent.SessionDataset}
	for _, name := range p.DataStreamNames() {
		ds := p.DataStreams[name]
		require.Equal(t, "logs", ds.Type, name)
		require.Equal(t, datasets[name], p.Dataset(name), "data stream %s is the dataset teleportbeat routes it to", name)
		require.Len(t, ds.Streams, 1, name)
		s := ds.Streams[0]
		require.Equal(t, agent.InputType, s.Input, name)

		// Every variable the template uses is declared (by the stream
		// or by its input), and every declared one is used.
		tmpl, err := os.ReadFile(filepath.Join(pkgDir, "data_stream", name, "agent", "stream", s.TemplatePath))
		require.NoError(t, err, name)
		declared := map[string]bool{}
		for _, v := range append(p.InputVars(s.Input), s.Vars...) {
			declared[v.Name] = true
		}
		used := map[string]bool{}
		for _, m := range hbsVarRef.FindAllStringSubmatch(string(tmpl), -1) {
			if m[1] == "this" {
				continue
			}
			used[m[1]] = true
			require.True(t, declared[m[1]], "data stream %s: template uses undeclared var %s", name, m[1])
		}
		for _, v := range s.Vars {
			require.True(t, used[v.Name], "data stream %s: var %s is declared but not used by the template", name, v.Name)
		}
	}
}

// field is one field definition.
type field struct {
	Name     string  `yaml:"name"`
	Type     string  `yaml:"type"`
	External string  `yaml:"external"`
	Fields   []field `yaml:"fields"`
}

// declared reads a data stream's fields: every path with its definition.
func declared(t *testing.T, ds string) map[string]field {
	t.Helper()
	out := map[string]field{}
	files, err := filepath.Glob(filepath.Join(pkgDir, "data_stream", ds, "fields", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var walk func(file, prefix string, fs []field)
	walk = func(file, prefix string, fs []field) {
		for _, f := range fs {
			require.NotEmpty(t, f.Name, "%s: a field without a name", file)
			path := prefix + f.Name
			_, dup := out[path]
			require.False(t, dup, "%s: field %s declared twice in data stream %s", file, path, ds)
			switch {
			case f.External != "":
				require.Equal(t, "ecs", f.External, "%s: %s", file, path)
			case f.Type == "group":
				require.NotEmpty(t, f.Fields, "%s: group %s has no fields", file, path)
				walk(file, path+".", f.Fields)
			default:
				require.Contains(t, fieldTypes, f.Type, "%s: field %s type", file, path)
			}
			out[path] = f
		}
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var fs []field
		require.NoError(t, yaml.Unmarshal(b, &fs), file)
		walk(file, "", fs)
	}
	return out
}

// ecsFields are the ECS field names of the pinned libbeat (fields.yml's
// ecs section).
func ecsFields(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../fields.yml")
	require.NoError(t, err)
	var keys []struct {
		Key    string  `yaml:"key"`
		Fields []field `yaml:"fields"`
	}
	require.NoError(t, yaml.Unmarshal(b, &keys))
	out := map[string]bool{}
	var walk func(prefix string, fs []field)
	walk = func(prefix string, fs []field) {
		for _, f := range fs {
			if f.Type == "group" {
				walk(prefix+f.Name+".", f.Fields)
				continue
			}
			out[prefix+f.Name] = true
		}
	}
	for _, k := range keys {
		if k.Key == "ecs" {
			walk("", k.Fields)
		}
	}
	require.Greater(t, len(out), 500)
	return out
}

// covered reports whether a document path is declared: exactly, or under
// a group's "*" object (fields of newer Teleport versions).
func covered(decl map[string]field, path string) bool {
	if _, ok := decl[path]; ok {
		return true
	}
	for i := strings.LastIndex(path, "."); i > 0; i = strings.LastIndex(path[:i], ".") {
		if f, ok := decl[path[:i]]; ok && (f.Type == "object" || f.Type == "flattened") {
			return true
		}
		if _, ok := decl[path[:i]+".*"]; ok {
			return true
		}
	}
	return false
}

func TestFields(t *testing.T) {
	ecs := ecsFields(t)
	docs, err := generate.SampleDocuments()
	require.NoError(t, err)
	for _, ds := range generate.DataStreams {
		decl := declared(t, ds)
		for path, f := range decl {
			if f.External == "ecs" {
				require.True(t, ecs[path], "data stream %s: %s is declared external: ecs but is not an ECS field", ds, path)
			}
		}
		for _, base := range []string{"@timestamp", "data_stream.type", "data_stream.dataset", "data_stream.namespace", "event.dataset", "event.module"} {
			require.Contains(t, decl, base, "data stream %s: base field", ds)
		}
		require.NotEmpty(t, docs[ds])
		for _, d := range docs[ds] {
			for _, p := range generate.LeafPaths(d) {
				require.True(t, covered(decl, p), "data stream %s: teleportbeat fills %s, which the package does not declare", ds, p)
			}
		}
	}
}

func TestKibanaAssets(t *testing.T) {
	objects := map[string]map[string]any{}
	files, err := filepath.Glob(filepath.Join(pkgDir, "kibana", "*", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	types := []string{}
	rulesSeen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var o map[string]any
		require.NoError(t, json.Unmarshal(b, &o), f)
		id := strings.TrimSuffix(filepath.Base(f), ".json")
		require.Equal(t, id, o["id"], "%s: the file name is the object id", f)
		if filepath.Base(filepath.Dir(f)) == "security_rule" {
			// Named <rule_id>_<version>, as Elastic's prebuilt rules.
			attrs := o["attributes"].(map[string]any)
			require.Equal(t, fmt.Sprintf("%s_%v", attrs["rule_id"], attrs["version"]), id, f)
			require.Equal(t, "security-rule", o["type"], f)
			require.Contains(t, attrs["index"], "logs-teleportbeat.audit-*", "%s: searches the package's data stream", f)
			rulesSeen++
			continue
		}
		require.True(t, strings.HasPrefix(id, pkgDir+"-"), "%s: asset files are named after the package", f)
		require.Equal(t, filepath.Base(filepath.Dir(f)), o["type"], "%s: the directory is the object type", f)
		objects[id] = o
		types = append(types, o["type"].(string))
		if o["type"] == "dashboard" {
			// Kibana's import wants these as JSON strings.
			_, isString := o["attributes"].(map[string]any)["panelsJSON"].(string)
			require.True(t, isString, "%s: panelsJSON is encoded", f)
		}
	}
	require.Contains(t, types, "dashboard")
	all, err := rules.All()
	require.NoError(t, err)
	require.Equal(t, len(all), rulesSeen, "every detection rule is a security_rule asset")
	for id, o := range objects {
		refs, _ := o["references"].([]any)
		for _, r := range refs {
			ref := r.(map[string]any)
			if ref["type"] == "index-pattern" {
				require.Equal(t, "logs-*", ref["id"], "%s: Fleet's logs-* data view", id)
				continue
			}
			require.Contains(t, objects, ref["id"], "%s references %v, which the package lacks", id, ref["id"])
		}
	}
}

// TestComponentSpec checks the spec Elastic Agent reads to run teleportbeat.
func TestComponentSpec(t *testing.T) {
	var spec struct {
		Version int `yaml:"version"`
		Inputs  []struct {
			Name        string   `yaml:"name"`
			Description string   `yaml:"description"`
			Platforms   []string `yaml:"platforms"`
			Outputs     []string `yaml:"outputs"`
			Command     struct {
				RestartMonitoringPeriod  string            `yaml:"restart_monitoring_period"`
				MaximumRestartsPerPeriod int               `yaml:"maximum_restarts_per_period"`
				Timeouts                 map[string]string `yaml:"timeouts"`
				Args                     []string          `yaml:"args"`
			} `yaml:"command"`
		} `yaml:"inputs"`
	}
	b, err := os.ReadFile("teleportbeat.spec.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(b, &spec))
	require.Equal(t, 2, spec.Version)
	require.Len(t, spec.Inputs, 1)
	in := spec.Inputs[0]
	require.Equal(t, agent.InputType, in.Name)
	require.NotEmpty(t, in.Description)
	require.NotEmpty(t, in.Platforms)
	for _, pl := range in.Platforms {
		require.Contains(t, platforms, pl)
	}
	require.Contains(t, in.Outputs, "elasticsearch")
	require.Contains(t, in.Outputs, "logstash")
	_, err = time.ParseDuration(in.Command.RestartMonitoringPeriod)
	require.NoError(t, err)
	require.True(t, slices.Contains(in.Command.Args, "management.enabled=true"), "the spec turns management on")
	for i := 0; i < len(in.Command.Args); i += 2 {
		require.Equal(t, "-E", in.Command.Args[i], "args are -E key=value pairs")
		require.Contains(t, in.Command.Args[i+1], "=")
	}
}

// TestRenderedPolicyConfiguresTheBeat renders both streams as Fleet would
// for a policy, makes the unit Elastic Agent would send, and checks that
// teleportbeat accepts it and routes each stream to its data stream.
func TestRenderedPolicyConfiguresTheBeat(t *testing.T) {
	p := load(t)
	tp, idFile := teleporttest.StartWithIdentity(t, t.TempDir())

	vars := map[string]any{
		"addr":          []any{tp.Addr()},
		"identity_file": idFile,
		"start_time":    "2019-01-01T00:00:00Z",
		"event_types":   []any{"user.login", "session.start"},
		"processors":    "- add_tags:\n    tags: [teleport]",
	}
	unit := &proto.UnitExpectedConfig{Id: "teleport-policy-1", Type: agent.InputType, DataStream: &proto.DataStream{Namespace: "default"}}
	for _, ds := range p.DataStreamNames() {
		src, err := p.Render(ds, vars)
		require.NoError(t, err)
		s, err := structpb.NewStruct(src)
		require.NoError(t, err, ds)
		unit.Streams = append(unit.Streams, &proto.Stream{Id: "teleport-" + ds, DataStream: &proto.DataStream{Dataset: p.Dataset(ds), Type: "logs"}, Source: s})
	}
	cfgs, err := agent.Transform(unit, nil)
	require.NoError(t, err)
	require.Len(t, cfgs, 1)
	f := &input.Factory{Log: logptest.NewTestingLogger(t, ""), Info: beat.Info{Beat: "teleportbeat", Version: "9.3.0"}}
	require.NoError(t, f.CheckConfig(cfgs[0].Config))

	var got struct {
		Teleportbeat struct {
			Teleport struct {
				Addr         []string `config:"addr"`
				IdentityFile string   `config:"identity_file"`
			} `config:"teleport"`
			Audit struct {
				StartTime    string   `config:"start_time"`
				BatchSize    int      `config:"batch_size"`
				PollInterval string   `config:"poll_interval"`
				EventTypes   []string `config:"event_types"`
			} `config:"audit"`
			Sessions struct {
				Enabled           bool     `config:"enabled"`
				Concurrency       int      `config:"concurrency"`
				ExcludeEventTypes []string `config:"exclude_event_types"`
			} `config:"sessions"`
		} `config:"teleportbeat"`
	}
	require.NoError(t, cfgs[0].Config.Unpack(&got))
	tb := got.Teleportbeat
	require.Equal(t, []string{tp.Addr()}, tb.Teleport.Addr)
	require.Equal(t, idFile, tb.Teleport.IdentityFile)
	require.Equal(t, "2019-01-01T00:00:00Z", tb.Audit.StartTime)
	require.Equal(t, 500, tb.Audit.BatchSize, "the package's default")
	require.Equal(t, "5s", tb.Audit.PollInterval)
	require.Equal(t, []string{"user.login", "session.start"}, tb.Audit.EventTypes)
	require.True(t, tb.Sessions.Enabled)
	require.Equal(t, 5, tb.Sessions.Concurrency)
	require.Equal(t, []string{"print"}, tb.Sessions.ExcludeEventTypes)

	var routes struct {
		Audit struct {
			Processors []map[string]any `config:"processors"`
		} `config:"audit_stream"`
	}
	require.NoError(t, cfgs[0].Config.Unpack(&routes))
	var names []string
	for _, proc := range routes.Audit.Processors {
		for name := range proc {
			names = append(names, name)
		}
	}
	require.Equal(t, "add_tags", names[len(names)-1], "the policy's processors run on the stream, after the agent's own (%v)", names)
}

// TestInstallsBesideElasticsTeleportIntegration: Fleet installs Elastic's
// teleport integration (which reads the event handler's files) and
// teleportbeat's package side by side, in either order, and neither
// replaces the other's index template, component template or pipeline:
// teleportbeat's data streams are its own (logs-teleportbeat.*), so each
// writes through its own template. (With the data streams it had before,
// logs-teleport.audit-*, the second install replaced the first's template
// of the same name.)
func TestInstallsBesideElasticsTeleportIntegration(t *testing.T) {
	ours := load(t)
	elastic, err := fleetpkg.Load(filepath.Join("testdata", "elastic-teleport"))
	require.NoError(t, err)
	fieldsYML, err := os.ReadFile(filepath.Join("..", "fields.yml"))
	require.NoError(t, err)
	resolve := func(b []byte) ([]byte, error) { return generate.ResolveECS(b, fieldsYML) }
	oursAssets, err := ours.ElasticsearchAssets(resolve)
	require.NoError(t, err)
	elasticAssets, err := elastic.ElasticsearchAssets(nil)
	require.NoError(t, err)

	for _, order := range [][]*fleetpkg.ESAssets{{elasticAssets, oursAssets}, {oursAssets, elasticAssets}} {
		es := estest.New()
		for _, a := range order {
			install(t, es, a)
		}
		for _, a := range []*fleetpkg.ESAssets{oursAssets, elasticAssets} {
			for name, body := range a.IndexTemplates {
				stored, ok := es.IndexTemplate(name)
				require.True(t, ok, name)
				want, err := json.Marshal(body)
				require.NoError(t, err)
				require.JSONEq(t, string(want), string(stored), "%s is the installing package's own", name)
			}
		}
		require.Equal(t, "logs-teleport.audit", es.TemplateOf("logs-teleport.audit-default"), "Elastic's data stream writes through its template")
		require.Equal(t, "logs-teleportbeat.audit", es.TemplateOf("logs-teleportbeat.audit-default"), "teleportbeat's through its own")
		require.Equal(t, "logs-teleportbeat.session", es.TemplateOf("logs-teleportbeat.session-default"))
		// Each takes its own package's documents.
		require.NoError(t, es.Create("logs-teleport.audit-default", "e1", []byte(`{"@timestamp":"2025-01-01T00:00:00Z","event":{"dataset":"teleport.audit","module":"teleport"},"data_stream":{"type":"logs","dataset":"teleport.audit","namespace":"default"}}`)))
		require.NoError(t, es.Create("logs-teleportbeat.audit-default", "t1", []byte(`{"@timestamp":"2025-01-01T00:00:00Z","event":{"dataset":"teleportbeat.audit","module":"teleport"},"data_stream":{"type":"logs","dataset":"teleportbeat.audit","namespace":"default"}}`)))
	}
	for name := range oursAssets.IndexTemplates {
		_, clash := elasticAssets.IndexTemplates[name]
		require.False(t, clash, name)
	}
	for name := range oursAssets.ComponentTemplates {
		_, clash := elasticAssets.ComponentTemplates[name]
		require.False(t, clash, name)
	}
	for name := range oursAssets.Pipelines {
		_, clash := elasticAssets.Pipelines[name]
		require.False(t, clash, name)
	}
}

func install(t *testing.T, es *estest.Recorder, a *fleetpkg.ESAssets) {
	t.Helper()
	put := func(what string, bodies map[string]map[string]any, fn func(string, []byte) error) {
		for name, body := range bodies {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			require.NoError(t, fn(name, b), "%s %s", what, name)
		}
	}
	put("pipeline", a.Pipelines, es.PutPipeline)
	put("component template", a.ComponentTemplates, es.PutComponentTemplate)
	put("index template", a.IndexTemplates, es.PutIndexTemplate)
}
