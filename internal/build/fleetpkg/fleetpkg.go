// Package fleetpkg reads teleportbeat's Fleet integration package
// (module/teleportbeat) and renders its agent stream templates as Fleet
// does (Handlebars, then YAML), so that tests can check the package
// against the package-spec rules and drive the beat with exactly the
// configuration a Fleet policy produces.
package fleetpkg

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aymerick/raymond"
	"gopkg.in/yaml.v2"
)

// Var is a package variable.
type Var struct {
	Name        string `yaml:"name"`
	Type        string `yaml:"type"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Multi       bool   `yaml:"multi"`
	Required    bool   `yaml:"required"`
	ShowUser    bool   `yaml:"show_user"`
	Default     any    `yaml:"default"`
}

// Input is a policy template input.
type Input struct {
	Type        string `yaml:"type"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Vars        []Var  `yaml:"vars"`
}

// PolicyTemplate is one policy template of the manifest.
type PolicyTemplate struct {
	Name        string  `yaml:"name"`
	Title       string  `yaml:"title"`
	Description string  `yaml:"description"`
	Inputs      []Input `yaml:"inputs"`
}

// Manifest is the package's manifest.yml.
type Manifest struct {
	FormatVersion string   `yaml:"format_version"`
	Name          string   `yaml:"name"`
	Title         string   `yaml:"title"`
	Version       string   `yaml:"version"`
	Description   string   `yaml:"description"`
	Type          string   `yaml:"type"`
	Categories    []string `yaml:"categories"`
	Conditions    struct {
		Kibana struct {
			Version string `yaml:"version"`
		} `yaml:"kibana"`
		Elastic struct {
			Subscription string   `yaml:"subscription"`
			Capabilities []string `yaml:"capabilities"`
		} `yaml:"elastic"`
	} `yaml:"conditions"`
	Icons []struct {
		Src   string `yaml:"src"`
		Title string `yaml:"title"`
		Size  string `yaml:"size"`
		Type  string `yaml:"type"`
	} `yaml:"icons"`
	PolicyTemplates []PolicyTemplate `yaml:"policy_templates"`
	Owner           struct {
		Github string `yaml:"github"`
		Type   string `yaml:"type"`
	} `yaml:"owner"`
}

// Stream is a data stream's stream.
type Stream struct {
	Input        string `yaml:"input"`
	Title        string `yaml:"title"`
	Description  string `yaml:"description"`
	TemplatePath string `yaml:"template_path"`
	Enabled      *bool  `yaml:"enabled"`
	Vars         []Var  `yaml:"vars"`
}

// DataStream is a data stream's manifest.yml.
type DataStream struct {
	Dir     string   `yaml:"-"`
	Title   string   `yaml:"title"`
	Type    string   `yaml:"type"`
	Dataset string   `yaml:"dataset"`
	Streams []Stream `yaml:"streams"`
}

// Package is the loaded package.
type Package struct {
	Dir         string
	Manifest    Manifest
	DataStreams map[string]*DataStream // by directory name
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Load reads the package in dir.
func Load(dir string) (*Package, error) {
	p := &Package{Dir: dir, DataStreams: map[string]*DataStream{}}
	if err := readYAML(filepath.Join(dir, "manifest.yml"), &p.Manifest); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "data_stream"))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		ds := &DataStream{Dir: e.Name()}
		if err := readYAML(filepath.Join(dir, "data_stream", e.Name(), "manifest.yml"), ds); err != nil {
			return nil, err
		}
		p.DataStreams[e.Name()] = ds
	}
	return p, nil
}

// Dataset is the data stream's dataset: its manifest's, or
// <package>.<directory>.
func (p *Package) Dataset(ds string) string {
	if d := p.DataStreams[ds].Dataset; d != "" {
		return d
	}
	return p.Manifest.Name + "." + ds
}

// InputVars returns the vars of the policy template input of that type.
func (p *Package) InputVars(input string) []Var {
	for _, pt := range p.Manifest.PolicyTemplates {
		for _, in := range pt.Inputs {
			if in.Type == input {
				return in.Vars
			}
		}
	}
	return nil
}

// DataStreamNames are the data stream directories, sorted.
func (p *Package) DataStreamNames() []string {
	out := make([]string, 0, len(p.DataStreams))
	for n := range p.DataStreams {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Render renders the first stream of data stream ds as Fleet compiles a
// policy: the input's and the stream's vars (defaults, overridden by
// values) fill the Handlebars template, and the result is parsed as YAML.
func (p *Package) Render(ds string, values map[string]any) (map[string]any, error) {
	d, ok := p.DataStreams[ds]
	if !ok || len(d.Streams) == 0 {
		return nil, fmt.Errorf("data stream %s: no stream", ds)
	}
	s := d.Streams[0]
	ctx := map[string]any{}
	for _, v := range append(append([]Var{}, p.InputVars(s.Input)...), s.Vars...) {
		if v.Default != nil {
			ctx[v.Name] = v.Default
		}
	}
	for k, v := range values {
		ctx[k] = v
	}
	tp := s.TemplatePath
	if tp == "" {
		tp = "stream.yml.hbs"
	}
	src, err := os.ReadFile(filepath.Join(p.Dir, "data_stream", ds, "agent", "stream", tp))
	if err != nil {
		return nil, err
	}
	tmpl, err := raymond.Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("data stream %s: template: %w", ds, err)
	}
	out, err := tmpl.Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("data stream %s: render: %w", ds, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("data stream %s: rendered template is not YAML: %w\n%s", ds, err, out)
	}
	return normalize(m).(map[string]any), nil
}

// normalize turns YAML's map[any]any into map[string]any, as JSON (the
// policy Fleet sends) carries it.
func normalize(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = normalize(val)
		}
		return m
	case map[string]any:
		for k, val := range t {
			t[k] = normalize(val)
		}
		return t
	case []any:
		for i := range t {
			t[i] = normalize(t[i])
		}
		return t
	case int:
		return float64(t) // JSON numbers
	}
	return v
}
