package estest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Ingest pipelines, run on a document before the mapping is applied, as
// Elasticsearch runs them: the processors teleportbeat's pipelines use
// (set, rename, remove, append, geoip), each with its own ignore_missing,
// ignore_failure and on_failure, and the pipeline's on_failure. A
// processor the stand-in does not know fails the document, so that a new
// one is noticed (Elasticsearch would have refused the pipeline or run it;
// the stand-in cannot tell which).

// GeoIPTable is what the stand-in's geoip processor knows: by database
// file and IP address, the properties Elasticsearch's databases give
// (city_name, country_iso_code, location, asn, organization_name, ...).
type GeoIPTable map[string]map[string]map[string]any

// SetGeoIP sets what the geoip processor finds. Without it, the databases
// are there and hold no address.
func (r *Recorder) SetGeoIP(t GeoIPTable) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.geo = t
}

type ingestDoc map[string]any

// Simulate runs a pipeline on a document as the recorder's ingest does
// (Elasticsearch's _simulate): now is the ingest time, geo what the geoip
// processor finds.
func Simulate(pipeline, doc map[string]any, now time.Time, geo GeoIPTable) (map[string]any, error) {
	body, err := json.Marshal(pipeline)
	if err != nil {
		return nil, err
	}
	src, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	out, err := runPipeline(body, src, now, geo)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// runPipeline runs a pipeline's processors on a document's source.
func runPipeline(body, src []byte, now time.Time, geo GeoIPTable) ([]byte, error) {
	var p struct {
		Processors []map[string]map[string]any `json:"processors"`
		OnFailure  []map[string]map[string]any `json:"on_failure"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("estest: the pipeline is not JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var doc ingestDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("failed to parse: %w", err)
	}
	meta := map[string]any{"timestamp": now.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")}
	if err := runProcessors(p.Processors, doc, meta, geo); err != nil {
		if len(p.OnFailure) == 0 {
			return nil, err
		}
		meta["on_failure_message"] = err.Error()
		if err := runProcessors(p.OnFailure, doc, meta, geo); err != nil {
			return nil, err
		}
	}
	return json.Marshal(doc)
}

func runProcessors(procs []map[string]map[string]any, doc ingestDoc, meta map[string]any, geo GeoIPTable) error {
	for _, proc := range procs {
		for name, cfg := range proc {
			err := runProcessor(name, cfg, doc, meta, geo)
			if err == nil {
				continue
			}
			if cfg["ignore_failure"] == true {
				continue
			}
			if of, ok := cfg["on_failure"].([]any); ok {
				var handlers []map[string]map[string]any
				b, _ := json.Marshal(of)
				_ = json.Unmarshal(b, &handlers)
				meta["on_failure_message"] = err.Error()
				if err := runProcessors(handlers, doc, meta, geo); err != nil {
					return err
				}
				continue
			}
			return err
		}
	}
	return nil
}

func runProcessor(name string, cfg map[string]any, doc ingestDoc, meta map[string]any, geo GeoIPTable) error {
	if _, ok := cfg["if"]; ok {
		return fmt.Errorf("estest: the stand-in does not run painless conditions (processor %s)", name)
	}
	field, _ := cfg["field"].(string)
	ignoreMissing := cfg["ignore_missing"] == true
	switch name {
	case "set":
		if cfg["override"] == false {
			if _, ok := doc.get(field); ok {
				return nil
			}
		}
		v := cfg["value"]
		if from, ok := cfg["copy_from"].(string); ok {
			v, ok = doc.get(from)
			if !ok {
				return fmt.Errorf("field [%s] not present as part of path [%s]", from, from)
			}
		}
		if s, ok := v.(string); ok {
			v = mustache(s, doc, meta)
			if v == "" && cfg["ignore_empty_value"] == true {
				return nil
			}
		}
		doc.set(field, v)
	case "rename":
		v, ok := doc.get(field)
		if !ok {
			if ignoreMissing {
				return nil
			}
			return fmt.Errorf("field [%s] doesn't exist", field)
		}
		target, _ := cfg["target_field"].(string)
		if _, exists := doc.get(target); exists && cfg["override"] != true {
			return fmt.Errorf("field [%s] already exists", target)
		}
		doc.remove(field)
		doc.set(target, v)
	case "remove":
		for _, f := range asStrings(cfg["field"]) {
			if _, ok := doc.get(f); !ok {
				if ignoreMissing {
					continue
				}
				return fmt.Errorf("field [%s] doesn't exist", f)
			}
			doc.remove(f)
		}
	case "append":
		values := cfg["value"]
		var add []any
		if l, ok := values.([]any); ok {
			add = l
		} else {
			add = []any{values}
		}
		cur, _ := doc.get(field)
		var list []any
		switch x := cur.(type) {
		case nil:
		case []any:
			list = x
		default:
			list = []any{x}
		}
		for _, v := range add {
			if s, ok := v.(string); ok {
				v = mustache(s, doc, meta)
			}
			if cfg["allow_duplicates"] == false && slices.Contains(list, v) {
				continue
			}
			list = append(list, v)
		}
		doc.set(field, list)
	case "geoip":
		v, ok := doc.get(field)
		if !ok || v == nil {
			if ignoreMissing {
				return nil
			}
			return fmt.Errorf("field [%s] not present as part of path [%s]", field, field)
		}
		ip, _ := v.(string)
		db, _ := cfg["database_file"].(string)
		if db == "" {
			db = "GeoLite2-City.mmdb"
		}
		found := geo[db][ip]
		if found == nil {
			return nil
		}
		target, _ := cfg["target_field"].(string)
		if target == "" {
			target = "geoip"
		}
		out := map[string]any{}
		props := asStrings(cfg["properties"])
		for k, val := range found {
			if len(props) == 0 || slices.Contains(props, k) {
				out[k] = val
			}
		}
		doc.set(target, out)
	default:
		return fmt.Errorf("estest: the stand-in does not run the %s processor", name)
	}
	return nil
}

// mustache fills {{{ _ingest.x }}} and {{{ field }}} templates.
func mustache(s string, doc ingestDoc, meta map[string]any) string {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return s
		}
		open := "{{"
		closeTag := "}}"
		if strings.HasPrefix(s[i:], "{{{") {
			open, closeTag = "{{{", "}}}"
		}
		j := strings.Index(s[i+len(open):], closeTag)
		if j < 0 {
			return s
		}
		name := strings.TrimSpace(s[i+len(open) : i+len(open)+j])
		var val string
		if rest, ok := strings.CutPrefix(name, "_ingest."); ok {
			val = fmt.Sprint(meta[rest])
		} else if v, ok := doc.get(name); ok {
			val = fmt.Sprint(v)
		}
		s = s[:i] + val + s[i+len(open)+j+len(closeTag):]
	}
}

// get reads a dotted path through objects.
func (d ingestDoc) get(path string) (any, bool) {
	cur := map[string]any(d)
	parts := strings.Split(path, ".")
	for i, p := range parts {
		v, ok := cur[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		next, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

// set writes a dotted path, making the objects on the way.
func (d ingestDoc) set(path string, v any) {
	cur := map[string]any(d)
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
}

func (d ingestDoc) remove(path string) {
	cur := map[string]any(d)
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return
		}
		cur = next
	}
	delete(cur, parts[len(parts)-1])
}
