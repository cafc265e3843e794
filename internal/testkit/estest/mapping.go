package estest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Elasticsearch's mapping, applied to every document as Elasticsearch
// applies it, so that the stand-in refuses what Elasticsearch refuses.
// The rules and the messages are Elasticsearch's own, read in its source
// (github.com/elastic/elasticsearch, server/src/main/java/org/elasticsearch/
// index/mapper/):
//
//   - DocumentParser.java: field names (empty, blank, dotted names expanded
//     into objects, DotExpandingXContentParser's split), an object given a
//     concrete value, strict and false dynamic settings, arrays;
//   - DynamicFieldsBuilder.java, RootObjectMapper.java, DynamicTemplate.java:
//     dynamic mappings (strings to text with a keyword sub-field unless a
//     date is detected, integers to long, floating-point numbers to float,
//     dynamic templates by match_mapping_type, match/unmatch,
//     path_match/path_unmatch, with {name} and {dynamic_type});
//   - MappingLookup.java: index.mapping.total_fields.limit (objects, leaves
//     and multi-fields count) and index.mapping.depth.limit (an object at
//     path p has depth dots(p)+2);
//   - KeywordFieldMapper.java: ignore_above, and Lucene's immense term
//     (32766 UTF-8 bytes) for a longer value that is indexed;
//   - NumberFieldMapper.java: coercion of strings and fractions, ranges,
//     finite values, "" as null;
//   - BooleanFieldMapper.java, DateFieldMapper.java, IpFieldMapper.java,
//     ConstantKeywordFieldMapper.java, FieldAliasMapper.java;
//   - flattened/FlattenedFieldParser.java: objects only, depth_limit,
//     ignore_above, any key but one with \0, immense keyed values.
//
// Dynamic mappings a document adds are kept only when the whole document
// is accepted, and are kept for the life of the index (so across restarts
// of the beat that writes to the stand-in), as Elasticsearch keeps them.

// luceneMaxTermBytes is IndexWriter.MAX_TERM_LENGTH.
const luceneMaxTermBytes = 32766

// fieldDef is one field of a mapping.
type fieldDef struct {
	typ   string               // "object" for objects (and the root)
	props map[string]*fieldDef // an object's fields
	// dynamic is the object's dynamic setting ("" inherits).
	dynamic     string
	enabled     bool
	ignoreAbove int // 0: none
	format      string
	value       *string // constant_keyword's value, once set
	coerce      bool
	malformedOK bool // ignore_malformed
	// malformedSet is true when the mapping gives ignore_malformed (else
	// index.mapping.ignore_malformed applies).
	malformedSet bool
	depthLimit   int // flattened
	fields       map[string]*fieldDef
	nullValue    any
}

// dynamicTemplate is one of a mapping's dynamic_templates.
type dynamicTemplate struct {
	name                   string
	matchMappingType       []string
	match, unmatch         []string
	pathMatch, pathUnmatch []string
	regex                  bool
	mapping                map[string]any
}

// indexMapping is the mapping of one index (or data stream) and its
// settings that bear on documents.
type indexMapping struct {
	name               string
	root               *fieldDef
	templates          []dynamicTemplate
	dateDetection      bool
	numericDetection   bool
	dynamicDateFormats []string
	totalFieldsLimit   int
	depthLimit         int
	// ignoreMalformed is index.mapping.ignore_malformed.
	ignoreMalformed bool
	dataStream      bool
	fieldCount      int
	// defaultPipeline and finalPipeline are index.default_pipeline and
	// index.final_pipeline.
	defaultPipeline, finalPipeline string
}

// docError is a document Elasticsearch refuses: the bulk item's error.
type docError struct {
	Type   string
	Reason string
	// Cause, when set, is the caused_by of the error.
	CauseType, CauseReason string
}

func (e *docError) Error() string { return e.Type + ": " + e.Reason }

func parsingError(format string, args ...any) *docError {
	return &docError{Type: "document_parsing_exception", Reason: fmt.Sprintf(format, args...)}
}

// fieldError is FieldMapper.parse's wrapping of a value a field cannot
// take.
func fieldError(path, typ, id string, v any, cause string) *docError {
	return &docError{
		Type:      "document_parsing_exception",
		Reason:    fmt.Sprintf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'", path, typ, id, preview(v)),
		CauseType: "illegal_argument_exception", CauseReason: cause,
	}
}

// newIndexMapping builds an index's mapping from a composed template's
// mappings and settings (nil for an index no template matches).
func newIndexMapping(name string, mappings, settings map[string]any, dataStream bool) (*indexMapping, error) {
	m := &indexMapping{
		name:               name,
		root:               &fieldDef{typ: "object", props: map[string]*fieldDef{}, enabled: true, dynamic: "true"},
		dateDetection:      true,
		dynamicDateFormats: defaultDynamicDateFormats,
		totalFieldsLimit:   1000,
		depthLimit:         20,
		dataStream:         dataStream,
	}
	if s := setting(settings, "index.mapping.total_fields.limit"); s != nil {
		n, err := intSetting(s)
		if err != nil {
			return nil, fmt.Errorf("index.mapping.total_fields.limit: %w", err)
		}
		m.totalFieldsLimit = n
	}
	if s := setting(settings, "index.mapping.depth.limit"); s != nil {
		n, err := intSetting(s)
		if err != nil {
			return nil, fmt.Errorf("index.mapping.depth.limit: %w", err)
		}
		m.depthLimit = n
	}
	m.defaultPipeline, _ = setting(settings, "index.default_pipeline").(string)
	if v := setting(settings, "index.mapping.ignore_malformed"); v == true || v == "true" {
		m.ignoreMalformed = true
	}
	m.finalPipeline, _ = setting(settings, "index.final_pipeline").(string)
	if dataStream {
		// A data stream's backing indices map @timestamp as a date
		// (DataStreamTimestampFieldMapper).
		m.root.props["@timestamp"] = &fieldDef{typ: "date", format: defaultDateFormat, enabled: true, coerce: true}
	}
	if mappings != nil {
		if err := m.merge(mappings); err != nil {
			return nil, err
		}
	}
	m.fieldCount = countFields(m.root)
	return m, nil
}

// merge adds a template's mappings (component templates first, the index
// template last, as Elasticsearch composes them).
func (m *indexMapping) merge(mappings map[string]any) error {
	for k, v := range mappings {
		switch k {
		case "properties":
			props, _ := v.(map[string]any)
			if err := mergeProps(m.root, "", props); err != nil {
				return err
			}
		case "dynamic":
			m.root.dynamic = fmt.Sprint(v)
		case "date_detection":
			m.dateDetection = v == true || v == "true"
		case "numeric_detection":
			m.numericDetection = v == true || v == "true"
		case "dynamic_date_formats":
			m.dynamicDateFormats = nil
			for _, f := range asStrings(v) {
				if err := checkDateFormat(f); err != nil {
					return err
				}
				m.dynamicDateFormats = append(m.dynamicDateFormats, f)
			}
		case "dynamic_templates":
			list, _ := v.([]any)
			for _, e := range list {
				dt, err := parseDynamicTemplate(e)
				if err != nil {
					return err
				}
				// A template of the same name replaces the earlier one.
				m.templates = slices.DeleteFunc(m.templates, func(t dynamicTemplate) bool { return t.name == dt.name })
				m.templates = append(m.templates, dt)
			}
		case "_meta", "_source", "_routing", "_data_stream_timestamp", "enabled":
		case "subobjects", "runtime":
			return fmt.Errorf("estest: mapping parameter %q is not supported by the stand-in", k)
		default:
			return fmt.Errorf("estest: unknown root mapping parameter %q", k)
		}
	}
	return nil
}

func parseDynamicTemplate(e any) (dynamicTemplate, error) {
	obj, ok := e.(map[string]any)
	if !ok || len(obj) != 1 {
		return dynamicTemplate{}, fmt.Errorf("estest: a dynamic template must be an object with one name")
	}
	var dt dynamicTemplate
	for name, body := range obj {
		dt.name = name
		b, _ := body.(map[string]any)
		for k, v := range b {
			switch k {
			case "match_mapping_type":
				dt.matchMappingType = asStrings(v)
			case "match":
				dt.match = asStrings(v)
			case "unmatch":
				dt.unmatch = asStrings(v)
			case "path_match":
				dt.pathMatch = asStrings(v)
			case "path_unmatch":
				dt.pathUnmatch = asStrings(v)
			case "match_pattern":
				dt.regex = v == "regex"
			case "mapping":
				dt.mapping, _ = v.(map[string]any)
			case "runtime":
				return dt, fmt.Errorf("estest: runtime dynamic templates are not supported by the stand-in (%s)", name)
			default:
				return dt, fmt.Errorf("estest: dynamic template %s: unknown parameter %q", name, k)
			}
		}
		if dt.mapping == nil {
			return dt, fmt.Errorf("estest: dynamic template %s has no mapping", name)
		}
	}
	return dt, nil
}

// mergeProps adds the properties of a mapping to the object def.
func mergeProps(obj *fieldDef, path string, props map[string]any) error {
	for name, raw := range props {
		spec, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("estest: mapping of %s%s is not an object", path, name)
		}
		full := join(path, name)
		// A dotted name in a mapping is an object path.
		if strings.Contains(name, ".") {
			parts := strings.Split(name, ".")
			cur := obj
			for i, p := range parts[:len(parts)-1] {
				next := cur.props[p]
				if next == nil {
					next = &fieldDef{typ: "object", props: map[string]*fieldDef{}, enabled: true}
					cur.props[p] = next
				}
				if next.typ != "object" && next.typ != "nested" {
					return fmt.Errorf("estest: %s is not an object in the mapping", join(path, strings.Join(parts[:i+1], ".")))
				}
				cur = next
			}
			if err := mergeProps(cur, join(path, strings.Join(parts[:len(parts)-1], ".")), map[string]any{parts[len(parts)-1]: spec}); err != nil {
				return err
			}
			continue
		}
		if existing := obj.props[name]; existing != nil && (existing.typ == "object" || existing.typ == "nested") {
			if sub, ok := spec["properties"].(map[string]any); ok {
				if err := mergeProps(existing, full, sub); err != nil {
					return err
				}
				if d, ok := spec["dynamic"]; ok {
					existing.dynamic = fmt.Sprint(d)
				}
				continue
			}
		}
		def, err := parseFieldDef(full, spec)
		if err != nil {
			return err
		}
		obj.props[name] = def
	}
	return nil
}

// parseFieldDef reads one field's mapping.
func parseFieldDef(path string, spec map[string]any) (*fieldDef, error) {
	typ, _ := spec["type"].(string)
	if typ == "" {
		typ = "object"
	}
	def := &fieldDef{typ: typ, enabled: true, coerce: true}
	for k, v := range spec {
		switch k {
		case "type", "doc_values", "index", "store", "norms", "index_options", "eager_global_ordinals",
			"similarity", "split_queries_on_whitespace", "time_series_dimension", "time_series_metric",
			"meta", "boost", "normalizer", "analyzer", "search_analyzer", "fielddata", "null_value_text",
			"locale", "ignore_z_value", "path", "copy_to", "positive_score_impact", "on_script_error",
			"include_in_parent", "include_in_root", "default_metric", "metrics", "term_vector", "position_increment_gap":
		case "properties":
			def.props = map[string]*fieldDef{}
			props, _ := v.(map[string]any)
			if err := mergeProps(def, path, props); err != nil {
				return nil, err
			}
		case "dynamic":
			def.dynamic = fmt.Sprint(v)
		case "enabled":
			def.enabled = v != false && v != "false"
		case "ignore_above":
			n, err := intSetting(v)
			if err != nil {
				return nil, fmt.Errorf("estest: %s ignore_above: %w", path, err)
			}
			def.ignoreAbove = n
		case "format":
			def.format, _ = v.(string)
			if err := checkDateFormat(def.format); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		case "value":
			s := fmt.Sprint(v)
			def.value = &s
		case "coerce":
			def.coerce = v != false && v != "false"
		case "ignore_malformed":
			def.malformedOK = v == true || v == "true"
			def.malformedSet = true
		case "depth_limit":
			n, err := intSetting(v)
			if err != nil {
				return nil, fmt.Errorf("estest: %s depth_limit: %w", path, err)
			}
			def.depthLimit = n
		case "null_value":
			def.nullValue = v
		case "scaling_factor":
		case "fields":
			def.fields = map[string]*fieldDef{}
			subs, _ := v.(map[string]any)
			for name, s := range subs {
				sm, _ := s.(map[string]any)
				sub, err := parseFieldDef(path+"."+name, sm)
				if err != nil {
					return nil, err
				}
				def.fields[name] = sub
			}
		case "subobjects":
			return nil, fmt.Errorf("estest: %s: subobjects is not supported by the stand-in", path)
		default:
			return nil, fmt.Errorf("estest: %s: unknown mapping parameter %q", path, k)
		}
	}
	switch typ {
	case "object", "nested":
		if def.props == nil {
			def.props = map[string]*fieldDef{}
		}
	case "flattened":
		if def.depthLimit == 0 {
			def.depthLimit = 20
		}
	case "date", "date_nanos":
		if def.format == "" {
			def.format = defaultDateFormat
		}
	case "keyword", "text", "match_only_text", "wildcard", "constant_keyword", "long", "integer", "short", "byte",
		"unsigned_long", "double", "float", "half_float", "scaled_float", "boolean", "ip", "geo_point", "alias",
		"version", "binary", "semantic_text", "histogram", "aggregate_metric_double", "dense_vector":
	default:
		return nil, fmt.Errorf("estest: %s: field type %q is not known to the stand-in", path, typ)
	}
	return def, nil
}

// countFields counts the mapped fields as MappingLookup does: objects,
// leaves and multi-fields, not the root.
func countFields(obj *fieldDef) int {
	n := 0
	for _, d := range obj.props {
		n += 1 + len(d.fields)
		if d.props != nil {
			n += countFields(d)
		}
	}
	return n
}

func setting(settings map[string]any, key string) any {
	if settings == nil {
		return nil
	}
	if v, ok := settings[key]; ok {
		return v
	}
	// Nested form: {"index": {"mapping": {...}}}.
	cur := any(settings)
	for _, p := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok := m[p]; ok {
			cur = v
			continue
		}
		// A partly dotted key: {"index": {"mapping.total_fields.limit": ...}}.
		rest := strings.TrimPrefix(key, strings.SplitN(key, p, 2)[0])
		if v, ok := m[rest]; ok {
			return v
		}
		return nil
	}
	return cur
}

func intSetting(v any) (int, error) {
	switch n := v.(type) {
	case float64:
		return int(n), nil
	case int:
		return n, nil
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case string:
		return strconv.Atoi(n)
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

func asStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case []string:
		return x
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// metadataFields cannot be set inside a document (MetadataFieldMapper).
var metadataFields = map[string]bool{
	"_id": true, "_index": true, "_routing": true, "_source": true, "_seq_no": true, "_version": true,
	"_ignored": true, "_field_names": true, "_tier": true, "_data_stream_timestamp": true, "_nested_path": true,
	"_primary_term": true,
}

// docParse is the parsing of one document: the dynamic mappings it adds
// are undone when it is refused.
type docParse struct {
	m     *indexMapping
	id    string
	added []addedField
}

type addedField struct {
	parent *fieldDef
	name   string
	path   string
	def    *fieldDef
}

// parse applies the mapping to a document's source, adding the dynamic
// mappings it needs when it is accepted.
func (m *indexMapping) parse(id string, src []byte) *docError {
	doc, err := parseDocument(src)
	if err != nil {
		return parsingError("%s", err.Error())
	}
	p := &docParse{m: m, id: id}
	if m.dataStream {
		if derr := p.checkTimestamp(doc); derr != nil {
			return derr
		}
	}
	for _, mb := range doc {
		if metadataFields[mb.name] {
			return &docError{Type: "document_parsing_exception", Reason: fmt.Sprintf("[1:2] Field [%s] is a metadata field and cannot be added inside a document. Use the index API request parameters.", mb.name)}
		}
	}
	if derr := p.object(m.root, "", "true", doc); derr != nil {
		p.undo()
		return derr
	}
	if derr := p.checkLimits(); derr != nil {
		p.undo()
		return derr
	}
	for _, a := range p.added {
		m.fieldCount += 1 + len(a.def.fields)
	}
	return nil
}

// checkTimestamp is DataStreamTimestampFieldMapper's check.
func (p *docParse) checkTimestamp(doc object) *docError {
	n := 0
	for _, mb := range doc {
		if mb.name == "@timestamp" {
			if l, ok := mb.value.([]any); ok {
				n += len(l)
			} else if mb.value != nil {
				n++
			}
		}
	}
	switch {
	case n == 0:
		return &docError{Type: "illegal_argument_exception", Reason: "data stream timestamp field [@timestamp] is missing"}
	case n > 1:
		return &docError{Type: "illegal_argument_exception", Reason: "data stream timestamp field [@timestamp] encountered multiple values"}
	}
	return nil
}

func (p *docParse) undo() {
	for i := len(p.added) - 1; i >= 0; i-- {
		delete(p.added[i].parent.props, p.added[i].name)
	}
	p.added = nil
}

// checkLimits is MappingLookup's check of the mapping after the document's
// dynamic mappings are added.
func (p *docParse) checkLimits() *docError {
	if len(p.added) == 0 {
		return nil
	}
	newFields := 0
	for _, a := range p.added {
		newFields += 1 + len(a.def.fields)
		if a.def.typ == "object" || a.def.typ == "nested" {
			if depth := strings.Count(a.path, ".") + 2; depth > p.m.depthLimit {
				return &docError{Type: "illegal_argument_exception", Reason: fmt.Sprintf("Limit of mapping depth [%d] has been exceeded due to object field [%s]", p.m.depthLimit, a.path)}
			}
		}
	}
	if p.m.fieldCount+newFields > p.m.totalFieldsLimit {
		return &docError{Type: "illegal_argument_exception", Reason: fmt.Sprintf("Limit of total fields [%d] has been exceeded while adding new fields [%d]", p.m.totalFieldsLimit, newFields)}
	}
	return nil
}

// splitName is DotExpandingXContentParser's split of a dotted field name.
func splitName(name string) ([]string, *docError) {
	if name == "" {
		return nil, parsingError("failed to parse: Field name cannot be an empty string")
	}
	if !strings.Contains(name, ".") {
		if strings.TrimSpace(name) == "" {
			return nil, parsingError("Field name cannot contain only whitespace: [%s]", name)
		}
		return []string{name}, nil
	}
	parts := strings.Split(name, ".")
	// Java's String.split drops trailing empty strings.
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 {
		return nil, parsingError("failed to parse: field name cannot contain only dots")
	}
	for _, part := range parts {
		if part == "" {
			return nil, parsingError("failed to parse: field name cannot contain only whitespace: ['%s']", name)
		}
		if strings.TrimSpace(part) == "" {
			return nil, parsingError("failed to parse: field name starting or ending with a [.] makes object resolution ambiguous: [%s]", name)
		}
	}
	return parts, nil
}

// object parses the fields of an object value into the object def at path,
// whose effective dynamic setting is dyn.
func (p *docParse) object(def *fieldDef, path, dyn string, obj object) *docError {
	if !def.enabled {
		return nil
	}
	if def.dynamic != "" {
		dyn = def.dynamic
	}
	for _, mb := range obj {
		parts, derr := splitName(mb.name)
		if derr != nil {
			return derr
		}
		// {"a.b": v} is {"a": {"b": v}}.
		v := mb.value
		for i := len(parts) - 1; i > 0; i-- {
			v = object{{parts[i], v}}
		}
		if derr := p.field(def, path, dyn, parts[0], v); derr != nil {
			return derr
		}
	}
	return nil
}

// field parses one field of the object def.
func (p *docParse) field(parent *fieldDef, parentPath, dyn, name string, v any) *docError {
	path := join(parentPath, name)
	def := parent.props[name]
	if def == nil {
		if v == nil {
			if dyn == "strict" {
				return p.strict(parentPath, name)
			}
			return nil
		}
		if l, ok := v.([]any); ok {
			// A new field holding a list: its elements are parsed one
			// by one, the first non-null one mapping it.
			for _, e := range l {
				if derr := p.field(parent, parentPath, dyn, name, e); derr != nil {
					return derr
				}
			}
			return nil
		}
		switch dyn {
		case "strict":
			return p.strict(parentPath, name)
		case "false":
			return nil
		}
		var derr *docError
		def, derr = p.dynamicDef(path, name, v)
		if derr != nil {
			return derr
		}
		parent.props[name] = def
		p.added = append(p.added, addedField{parent: parent, name: name, path: path, def: def})
	}
	return p.value(def, path, dyn, v)
}

func (p *docParse) strict(parentPath, name string) *docError {
	within := parentPath
	if within == "" {
		within = "_doc"
	}
	return &docError{Type: "strict_dynamic_mapping_exception", Reason: fmt.Sprintf("[1:2] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", name, within)}
}

// value parses a value into its field.
func (p *docParse) value(def *fieldDef, path, dyn string, v any) *docError {
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if derr := p.value(def, path, dyn, e); derr != nil {
				return derr
			}
		}
		return nil
	}
	switch def.typ {
	case "object", "nested":
		switch x := v.(type) {
		case nil:
			return nil
		case object:
			return p.object(def, path, dyn, x)
		default:
			if !def.enabled {
				return nil
			}
			return parsingError("object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", path, lastName(path))
		}
	case "alias":
		return parsingError("Cannot write to a field alias [%s].", path)
	case "flattened":
		return p.flattened(def, path, v)
	case "geo_point":
		return nil // objects, strings and [lon, lat] alike
	}
	if v == nil {
		return nil
	}
	if _, isObject := v.(object); isObject {
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("Can't get text on a START_OBJECT at 1:2"))
	}
	if derr := p.leaf(def, path, v); derr != nil {
		if p.ignoresMalformed(def) {
			return nil
		}
		return derr
	}
	for name, sub := range def.fields {
		if derr := p.leaf(sub, path+"."+name, v); derr != nil && !p.ignoresMalformed(sub) {
			return derr
		}
	}
	return nil
}

// ignoresMalformed is whether a malformed value is kept unindexed: the
// field's ignore_malformed, else index.mapping.ignore_malformed for the
// types that take it.
func (p *docParse) ignoresMalformed(def *fieldDef) bool {
	if def.malformedSet {
		return def.malformedOK
	}
	if !p.m.ignoreMalformed {
		return false
	}
	switch def.typ {
	case "long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float", "scaled_float",
		"date", "date_nanos", "ip", "boolean", "geo_point":
		return true
	}
	return false
}

func lastName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// text is a scalar's text, as Jackson's getText gives it.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// javaLength is a Java String's length (UTF-16 code units), which
// ignore_above compares.
func javaLength(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// leaf parses a scalar into a field of a leaf type.
func (p *docParse) leaf(def *fieldDef, path string, v any) *docError {
	switch def.typ {
	case "keyword", "version":
		s := text(v)
		if def.ignoreAbove > 0 && javaLength(s) > def.ignoreAbove {
			return nil // kept in _source, not indexed
		}
		if len(s) > luceneMaxTermBytes {
			// Lucene's IndexingChain shows the term's first 30 bytes.
			return &docError{Type: "illegal_argument_exception", Reason: fmt.Sprintf(
				"Document contains at least one immense term in field=\"%s\" (whose UTF8 encoding is longer than the max length %d), all of which were skipped. Please correct the analyzer to not produce such terms.  The prefix of the first immense term is: '%v...', original message: bytes can be at most %d in length; got %d",
				path, luceneMaxTermBytes, []byte(s[:30]), luceneMaxTermBytes, len(s))}
		}
	case "text", "match_only_text", "wildcard", "binary", "semantic_text":
	case "constant_keyword":
		s := text(v)
		if def.value == nil {
			def.value = &s // the first document sets it
		} else if *def.value != s {
			return fieldError(path, def.typ, p.id, v, fmt.Sprintf("[constant_keyword] field [%s] only accepts values that are equal to the value defined in the mappings [%s], but got [%s]", path, *def.value, s))
		}
	case "long", "integer", "short", "byte", "unsigned_long":
		return p.integer(def, path, v)
	case "double", "float", "half_float", "scaled_float":
		return p.float(def, path, v)
	case "boolean":
		switch x := v.(type) {
		case bool:
		case string:
			if x != "" && x != "true" && x != "false" {
				return fieldError(path, def.typ, p.id, v, fmt.Sprintf("Failed to parse value [%s] as only [true] or [false] are allowed.", x))
			}
		default:
			return fieldError(path, def.typ, p.id, v, fmt.Sprintf("Current token (VALUE_NUMBER_INT) not of boolean type"))
		}
	case "date", "date_nanos":
		ok := false
		switch x := v.(type) {
		case string:
			ok = parsesAsDate(def.format, x)
		case json.Number:
			ok = numberAsDate(def.format, x)
		}
		if !ok {
			return fieldError(path, def.typ, p.id, v, fmt.Sprintf("failed to parse date field [%s] with format [%s]", text(v), def.format))
		}
	case "ip":
		s := text(v)
		a, err := netip.ParseAddr(s)
		if _, isString := v.(string); !isString || err != nil || a.Zone() != "" {
			return fieldError(path, def.typ, p.id, v, fmt.Sprintf("'%s' is not an IP string literal.", s))
		}
	case "histogram", "aggregate_metric_double", "dense_vector":
		return fieldError(path, def.typ, p.id, v, "a value of this type cannot be a scalar")
	}
	return nil
}

var (
	intRanges = map[string][2]*big.Int{
		"long":          {big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)},
		"integer":       {big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
		"short":         {big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
		"byte":          {big.NewInt(math.MinInt8), big.NewInt(math.MaxInt8)},
		"unsigned_long": {big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)},
	}
	numberRE = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)
)

// integer is NumberFieldMapper's parse of an integer type: strings and
// fractions are coerced (truncated) unless coerce is false, "" is null,
// and the value must be in the type's range.
func (p *docParse) integer(def *fieldDef, path string, v any) *docError {
	s, null, bad := p.numberText(def, path, v)
	if null || bad != nil {
		return bad
	}
	if !numberRE.MatchString(s) {
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("For input string: \"%s\"", s))
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToZero)
	if err != nil {
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("For input string: \"%s\"", s))
	}
	if !f.IsInt() && !def.coerce {
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("Value [%s] has a decimal part", s))
	}
	i, _ := f.Int(nil)
	r := intRanges[def.typ]
	if i.Cmp(r[0]) < 0 || i.Cmp(r[1]) > 0 {
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("Value [%s] is out of range for %s", s, article(def.typ)))
	}
	return nil
}

func article(typ string) string {
	switch typ {
	case "integer", "unsigned_long":
		return "an " + typ
	}
	return "a " + typ
}

// numberText is the text of a number field's value as NumberFieldMapper
// reads it: a JSON number, or a string when coerce allows ("" is null).
func (p *docParse) numberText(def *fieldDef, path string, v any) (s string, null bool, bad *docError) {
	switch x := v.(type) {
	case json.Number:
		return string(x), false, nil
	case string:
		if x == "" {
			return "", true, nil
		}
		if !def.coerce {
			return "", false, fieldError(path, def.typ, p.id, v, "Cannot parse a string when coerce is disabled")
		}
		return strings.TrimSpace(x), false, nil
	case bool:
		return "", false, fieldError(path, def.typ, p.id, v, "Current token (VALUE_TRUE) not numeric, can not use numeric value accessors")
	}
	return "", false, fieldError(path, def.typ, p.id, v, "not a number")
}

// float is NumberFieldMapper's parse of a floating-point type.
func (p *docParse) float(def *fieldDef, path string, v any) *docError {
	s, null, bad := p.numberText(def, path, v)
	if null || bad != nil {
		return bad
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		switch s {
		case "NaN", "Infinity", "-Infinity", "+Infinity":
			return fieldError(path, def.typ, p.id, v, fmt.Sprintf("[%s] supports only finite values, but got [%s]", def.typ, s))
		}
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("For input string: \"%s\"", s))
	}
	limit := math.MaxFloat64
	switch def.typ {
	case "float":
		limit = math.MaxFloat32
	case "half_float":
		limit = 65504
	}
	if math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > limit {
		return fieldError(path, def.typ, p.id, v, fmt.Sprintf("[%s] supports only finite values, but got [%s]", def.typ, s))
	}
	return nil
}

// flattened is FlattenedFieldParser: an object (or a list of objects), any
// key but one holding \0, no deeper than depth_limit, no keyed value
// longer than Lucene's term limit unless ignore_above skips it.
func (p *docParse) flattened(def *fieldDef, path string, v any) *docError {
	switch x := v.(type) {
	case nil:
		return nil
	case object:
		return p.flattenedObject(def, path, x, nil)
	default:
		return fieldError(path, "flattened", p.id, v, fmt.Sprintf("Failed to parse object: expecting token of type [START_OBJECT] but found [%s]", tokenName(v)))
	}
}

func tokenName(v any) string {
	switch v.(type) {
	case string:
		return "VALUE_STRING"
	case bool:
		return "VALUE_BOOLEAN"
	case json.Number:
		return "VALUE_NUMBER"
	}
	return "VALUE_NULL"
}

func (p *docParse) flattenedObject(def *fieldDef, root string, obj object, keyPath []string) *docError {
	for _, mb := range obj {
		if err := p.flattenedValue(def, root, keyPath, mb.name, mb.value); err != nil {
			return err
		}
	}
	return nil
}

func (p *docParse) flattenedValue(def *fieldDef, root string, keyPath []string, name string, v any) *docError {
	switch x := v.(type) {
	case object:
		kp := append(slices.Clone(keyPath), name)
		if len(kp)+1 > def.depthLimit {
			return &docError{Type: "document_parsing_exception", Reason: fmt.Sprintf("failed to parse: The provided [flattened] field [%s] exceeds the maximum depth limit of [%d].", root, def.depthLimit)}
		}
		return p.flattenedObject(def, root, x, kp)
	case []any:
		for _, e := range x {
			if err := p.flattenedValue(def, root, keyPath, name, e); err != nil {
				return err
			}
		}
		return nil
	case nil:
		return nil
	}
	key := strings.Join(append(slices.Clone(keyPath), name), ".")
	if strings.Contains(key, "\x00") {
		return &docError{Type: "document_parsing_exception", Reason: fmt.Sprintf("failed to parse: Keys in [flattened] fields cannot contain the reserved character \\0. Offending key: [%s].", key)}
	}
	value := text(v)
	if def.ignoreAbove > 0 && javaLength(value) > def.ignoreAbove {
		return nil
	}
	if keyed := len(key) + 1 + len(value); keyed > luceneMaxTermBytes {
		k := key
		if utf8.RuneCountInString(k) > 50 {
			k = string([]rune(k)[:50])
		}
		return &docError{Type: "document_parsing_exception", Reason: fmt.Sprintf(
			"failed to parse: Flattened field [%s] contains one immense field whose keyed encoding is longer than the allowed max length of %d bytes. Key length: %d, value length: %d for key starting with [%s]",
			root, luceneMaxTermBytes, len(key), len(value), k)}
	}
	return nil
}

// dynamicDef is the mapping a new field gets (DynamicFieldsBuilder): the
// first dynamic template that matches, else Elasticsearch's defaults.
func (p *docParse) dynamicDef(path, name string, v any) (*fieldDef, *docError) {
	matchType, dateFormat := p.m.detect(v)
	for _, dt := range p.m.templates {
		if !dt.matches(path, name, matchType) {
			continue
		}
		spec := substitute(dt.mapping, name, matchType)
		if _, ok := spec["type"]; !ok {
			switch matchType {
			case "object":
				spec["type"] = "object"
			case "string":
				spec["type"] = "text"
			case "double":
				spec["type"] = "float"
			default:
				spec["type"] = matchType
			}
		}
		if matchType == "date" {
			if _, ok := spec["format"]; !ok && spec["type"] == "date" {
				spec["format"] = dateFormat
			}
		}
		def, err := parseFieldDef(path, spec)
		if err != nil {
			return nil, &docError{Type: "illegal_argument_exception", Reason: err.Error()}
		}
		return def, nil
	}
	switch matchType {
	case "object":
		return &fieldDef{typ: "object", props: map[string]*fieldDef{}, enabled: true}, nil
	case "string":
		return &fieldDef{typ: "text", enabled: true, coerce: true, fields: map[string]*fieldDef{
			"keyword": {typ: "keyword", ignoreAbove: 256, enabled: true, coerce: true},
		}}, nil
	case "date":
		return &fieldDef{typ: "date", format: dateFormat, enabled: true, coerce: true}, nil
	case "long":
		return &fieldDef{typ: "long", enabled: true, coerce: true}, nil
	case "double":
		return &fieldDef{typ: "float", enabled: true, coerce: true}, nil
	case "boolean":
		return &fieldDef{typ: "boolean", enabled: true, coerce: true}, nil
	}
	return nil, parsingError("cannot map a value of type %T", v)
}

// detect is the dynamic type of a value, as match_mapping_type names it,
// and the date format that detected a date.
func (m *indexMapping) detect(v any) (string, string) {
	switch x := v.(type) {
	case object:
		return "object", ""
	case bool:
		return "boolean", ""
	case json.Number:
		if isFloatToken(x) {
			return "double", ""
		}
		return "long", ""
	case string:
		if m.dateDetection {
			for _, f := range m.dynamicDateFormats {
				if parsesAsDate(f, x) {
					return "date", f
				}
			}
		}
		if m.numericDetection {
			if _, err := strconv.ParseInt(x, 10, 64); err == nil {
				return "long", ""
			}
			if _, err := strconv.ParseFloat(x, 64); err == nil {
				return "double", ""
			}
		}
		return "string", ""
	}
	return "string", ""
}

// matches is DynamicTemplate.match.
func (dt dynamicTemplate) matches(path, name, matchType string) bool {
	if len(dt.matchMappingType) > 0 && !slices.ContainsFunc(dt.matchMappingType, func(t string) bool { return t == "*" || t == matchType }) {
		return false
	}
	if len(dt.match) > 0 && !dt.anyMatch(dt.match, name) {
		return false
	}
	if len(dt.unmatch) > 0 && dt.anyMatch(dt.unmatch, name) {
		return false
	}
	if len(dt.pathMatch) > 0 && !dt.anyMatch(dt.pathMatch, path) {
		return false
	}
	if len(dt.pathUnmatch) > 0 && dt.anyMatch(dt.pathUnmatch, path) {
		return false
	}
	return true
}

func (dt dynamicTemplate) anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if dt.regex {
			if re, err := regexp.Compile(p); err == nil && re.MatchString(s) {
				return true
			}
			continue
		}
		if simpleMatch(p, s) {
			return true
		}
	}
	return false
}

// simpleMatch is Regex.simpleMatch: '*' matches any run of characters.
func simpleMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, part)
		}
		j := strings.Index(s, part)
		if j < 0 {
			return false
		}
		s = s[j+len(part):]
	}
	return true
}

// substitute copies a template's mapping with {name} and {dynamic_type}
// replaced.
func substitute(mapping map[string]any, name, dynType string) map[string]any {
	out := make(map[string]any, len(mapping))
	for k, v := range maps.All(mapping) {
		switch x := v.(type) {
		case string:
			x = strings.ReplaceAll(x, "{name}", name)
			x = strings.ReplaceAll(x, "{dynamic_type}", dynType)
			out[k] = x
		case map[string]any:
			out[k] = substitute(x, name, dynType)
		default:
			out[k] = v
		}
	}
	return out
}
