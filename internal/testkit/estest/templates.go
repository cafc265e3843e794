package estest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// Index and component templates, kept as Elasticsearch keeps them, and the
// mapping each index gets from them when its first document arrives
// (MetadataIndexTemplateService: the matching index template of the highest
// priority, its component templates merged in order, then its own
// template).

type indexTemplate struct {
	name          string
	patterns      []string
	priority      int
	composedOf    []string
	ignoreMissing []string
	template      map[string]any // settings, mappings
	dataStream    bool
	body          []byte
}

type componentTemplate struct {
	template map[string]any
	body     []byte
}

// putIndexTemplate stores an index template; like Elasticsearch, it refuses
// one whose mappings cannot be parsed (here: ones the stand-in does not
// know how to apply).
func (r *Recorder) putIndexTemplate(name string, body []byte) (int, string) {
	var t struct {
		IndexPatterns any            `json:"index_patterns"`
		Priority      int            `json:"priority"`
		ComposedOf    []string       `json:"composed_of"`
		IgnoreMissing []string       `json:"ignore_missing_component_templates"`
		Template      map[string]any `json:"template"`
		DataStream    map[string]any `json:"data_stream"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return http.StatusBadRequest, errorBody("parse_exception", "index template is not JSON: "+err.Error())
	}
	tmpl := indexTemplate{
		name: name, patterns: asStrings(t.IndexPatterns), priority: t.Priority, composedOf: t.ComposedOf, ignoreMissing: t.IgnoreMissing,
		template: t.Template, dataStream: t.DataStream != nil, body: body,
	}
	if len(tmpl.patterns) == 0 {
		return http.StatusBadRequest, errorBody("action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, other := range r.indexTemplates {
		if other.name != name && other.priority == tmpl.priority && overlap(other.patterns, tmpl.patterns) {
			// MetadataIndexTemplateService.addIndexTemplateV2
			return http.StatusBadRequest, errorBody("illegal_argument_exception", fmt.Sprintf(
				"index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
				name, tmpl.patterns, other.name, other.name, other.patterns, tmpl.priority))
		}
	}
	// The mappings must be usable.
	if _, err := r.compose(tmpl, "probe"); err != nil {
		return http.StatusBadRequest, errorBody("mapper_parsing_exception", err.Error())
	}
	if r.indexTemplates == nil {
		r.indexTemplates = map[string]indexTemplate{}
	}
	r.indexTemplates[name] = tmpl
	return http.StatusOK, `{"acknowledged":true}`
}

func (r *Recorder) putComponentTemplate(name string, body []byte) (int, string) {
	var t struct {
		Template map[string]any `json:"template"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return http.StatusBadRequest, errorBody("parse_exception", "component template is not JSON: "+err.Error())
	}
	if _, err := newIndexMapping("probe", mappingsOf(t.Template), settingsOf(t.Template), false); err != nil {
		return http.StatusBadRequest, errorBody("mapper_parsing_exception", err.Error())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.componentTemplates == nil {
		r.componentTemplates = map[string]componentTemplate{}
	}
	r.componentTemplates[name] = componentTemplate{template: t.Template, body: body}
	return http.StatusOK, `{"acknowledged":true}`
}

func errorBody(typ, reason string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"type": typ, "reason": reason}, "status": 400})
	return string(b)
}

func mappingsOf(t map[string]any) map[string]any {
	m, _ := t["mappings"].(map[string]any)
	return m
}

func settingsOf(t map[string]any) map[string]any {
	m, _ := t["settings"].(map[string]any)
	return m
}

// compose builds the mapping of an index from a template and its
// component templates. The caller holds r.mu.
func (r *Recorder) compose(t indexTemplate, index string) (*indexMapping, error) {
	settings := map[string]any{}
	var mappings []map[string]any
	for _, c := range t.composedOf {
		ct, ok := r.componentTemplates[c]
		if !ok {
			ct, ok = builtinComponentTemplates[c]
		}
		if !ok && slices.Contains(t.ignoreMissing, c) {
			continue
		}
		if !ok {
			// Elasticsearch refuses an index template naming a missing
			// component template unless it is in ignore_missing_component_templates.
			return nil, fmt.Errorf("index template [%s] specifies component templates [%s] that do not exist", t.name, c)
		}
		maps.Copy(settings, flatSettings(settingsOf(ct.template)))
		if m := mappingsOf(ct.template); m != nil {
			mappings = append(mappings, m)
		}
	}
	maps.Copy(settings, flatSettings(settingsOf(t.template)))
	if m := mappingsOf(t.template); m != nil {
		mappings = append(mappings, m)
	}
	im, err := newIndexMapping(index, nil, settings, t.dataStream)
	if err != nil {
		return nil, err
	}
	for _, m := range mappings {
		if err := im.merge(m); err != nil {
			return nil, err
		}
	}
	im.fieldCount = countFields(im.root)
	return im, nil
}

// flatSettings turns {"index": {"mapping": {"total_fields": {"limit": 5}}}}
// into {"index.mapping.total_fields.limit": 5}.
func flatSettings(s map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				walk(join(prefix, k), x)
			}
			return
		}
		if !strings.HasPrefix(prefix, "index.") {
			prefix = "index." + prefix
		}
		out[prefix] = v
	}
	for k, v := range s {
		walk(k, v)
	}
	return out
}

// overlap reports whether two lists of index patterns can match one name
// (approximated: one pattern matches the other's literal prefix).
func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if simpleMatch(x, strings.TrimSuffix(y, "*")) || simpleMatch(y, strings.TrimSuffix(x, "*")) {
				return true
			}
		}
	}
	return false
}

// mappingFor is the mapping of an index, made from the matching template
// on its first document. The caller holds r.mu.
func (r *Recorder) mappingFor(index string) (*indexMapping, error) {
	if m, ok := r.indices[index]; ok {
		return m, nil
	}
	var best *indexTemplate
	names := slices.Sorted(maps.Keys(r.indexTemplates))
	for _, n := range names {
		t := r.indexTemplates[n]
		if !slices.ContainsFunc(t.patterns, func(p string) bool { return simpleMatch(p, index) }) {
			continue
		}
		if best == nil || t.priority > best.priority {
			best = &t
		}
	}
	var (
		m   *indexMapping
		err error
	)
	if best == nil {
		m, err = newIndexMapping(index, nil, nil, false)
	} else {
		m, err = r.compose(*best, index)
	}
	if err != nil {
		return nil, err
	}
	if r.indices == nil {
		r.indices = map[string]*indexMapping{}
	}
	r.indices[index] = m
	return m, nil
}

// IndexTemplateNames are the names of the index templates put.
func (r *Recorder) IndexTemplateNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.indexTemplates))
}

// IndexTemplate is the body of the index template put with name.
func (r *Recorder) IndexTemplate(name string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.indexTemplates[name]
	return t.body, ok
}

// TemplateOf is the name of the index template an index's mapping came
// from ("" when none matched), as Elasticsearch's simulate API tells.
func (r *Recorder) TemplateOf(index string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *indexTemplate
	for _, t := range r.indexTemplates {
		if slices.ContainsFunc(t.patterns, func(p string) bool { return simpleMatch(p, index) }) && (best == nil || t.priority > best.priority) {
			best = &t
		}
	}
	if best == nil {
		return ""
	}
	return best.name
}

// MappedFields are the leaf fields an index maps (including those learned
// from its documents) with their types, sorted by path.
func (r *Recorder) MappedFields(index string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.indices[index]
	if !ok {
		return nil
	}
	out := map[string]string{}
	var walk func(prefix string, d *fieldDef)
	walk = func(prefix string, d *fieldDef) {
		keys := make([]string, 0, len(d.props))
		for k := range d.props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := d.props[k]
			p := join(prefix, k)
			out[p] = sub.typ
			if sub.props != nil {
				walk(p, sub)
			}
		}
	}
	walk("", m.root)
	return out
}

// templateRequest serves /_index_template/{name} and
// /_component_template/{name}; ok is false for other paths.
func (r *Recorder) templateRequest(w http.ResponseWriter, req *http.Request, body []byte) bool {
	var kind string
	switch {
	case strings.HasPrefix(req.URL.Path, "/_index_template/"):
		kind = "index"
	case strings.HasPrefix(req.URL.Path, "/_component_template/"):
		kind = "component"
	default:
		return false
	}
	name := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
	r.mu.Lock()
	r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Body: body})
	var (
		stored []byte
		exists bool
	)
	if kind == "index" {
		t, ok := r.indexTemplates[name]
		stored, exists = t.body, ok
	} else {
		t, ok := r.componentTemplates[name]
		stored, exists = t.body, ok
	}
	r.mu.Unlock()
	switch req.Method {
	case http.MethodHead, http.MethodGet:
		if !exists {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"type":"resource_not_found_exception","reason":"%s template matching [%s] not found"},"status":404}`, kind, name)
			return true
		}
		if kind == "index" {
			fmt.Fprintf(w, `{"index_templates":[{"name":%q,"index_template":%s}]}`, name, stored)
		} else {
			fmt.Fprintf(w, `{"component_templates":[{"name":%q,"component_template":%s}]}`, name, stored)
		}
	case http.MethodPut, http.MethodPost:
		var status int
		var out string
		if kind == "index" {
			status, out = r.putIndexTemplate(name, body)
		} else {
			status, out = r.putComponentTemplate(name, body)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, out)
	case http.MethodDelete:
		r.mu.Lock()
		delete(r.indexTemplates, name)
		delete(r.componentTemplates, name)
		r.mu.Unlock()
		fmt.Fprint(w, `{"acknowledged":true}`)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
	return true
}

// PutIndexTemplate stores an index template as PUT _index_template would.
func (r *Recorder) PutIndexTemplate(name string, body []byte) error {
	if status, out := r.putIndexTemplate(name, body); status != http.StatusOK {
		return fmt.Errorf("index template %s refused: %s", name, out)
	}
	return nil
}

// Create writes one document as a bulk create action would (without an
// ingest pipeline) and returns Elasticsearch's refusal, if any.
func (r *Recorder) Create(index, id string, src []byte) error {
	status, typ, reason := r.item("create", index, id, "", src, nil)
	if status >= 300 && status != http.StatusConflict {
		return fmt.Errorf("%d %s: %s", status, typ, reason)
	}
	return nil
}

// PutComponentTemplate stores a component template as PUT
// _component_template would.
func (r *Recorder) PutComponentTemplate(name string, body []byte) error {
	if status, out := r.putComponentTemplate(name, body); status != http.StatusOK {
		return fmt.Errorf("component template %s refused: %s", name, out)
	}
	return nil
}

// PutPipeline stores an ingest pipeline as PUT _ingest/pipeline would.
func (r *Recorder) PutPipeline(name string, body []byte) error {
	if !json.Valid(body) {
		return fmt.Errorf("pipeline %s is not JSON", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pipelines == nil {
		r.pipelines = map[string][]byte{}
	}
	r.pipelines[name] = body
	return nil
}

// builtinComponentTemplates are the component templates Elasticsearch and
// Fleet install themselves, as far as they bear on teleportbeat's
// documents (Elasticsearch's x-pack/plugin/core/template-resources:
// logs@mappings, logs@settings, ecs@mappings; Fleet's .fleet_globals-1).
// ecs@mappings is cut to what applies to fields no template names (its
// dynamic templates for ECS names are left out: every field teleportbeat
// writes is named in its templates); logs@settings keeps
// index.mapping.ignore_malformed, which makes Elasticsearch keep a document
// with a malformed number, date, IP or boolean (the value is not indexed).
var builtinComponentTemplates = map[string]componentTemplate{
	"logs@mappings": {template: map[string]any{"mappings": map[string]any{
		"date_detection": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date"},
			"data_stream": map[string]any{"properties": map[string]any{
				"type":      map[string]any{"type": "constant_keyword"},
				"dataset":   map[string]any{"type": "constant_keyword"},
				"namespace": map[string]any{"type": "constant_keyword"},
			}},
		},
	}}},
	"logs@settings": {template: map[string]any{"settings": map[string]any{"index": map[string]any{
		"lifecycle": map[string]any{"name": "logs"},
		"mapping":   map[string]any{"ignore_malformed": true},
	}}}},
	"ecs@mappings": {template: map[string]any{"mappings": map[string]any{
		"date_detection": false,
		"dynamic_templates": []any{
			map[string]any{"all_strings_to_keywords": map[string]any{"match_mapping_type": "string", "mapping": map[string]any{"type": "keyword", "ignore_above": 1024}}},
		},
	}}},
	".fleet_globals-1": {template: map[string]any{"mappings": map[string]any{"_meta": map[string]any{"managed_by": "fleet"}}}},
}
