package estest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Kibana is a Kibana stand-in for libbeat's dashboard loader and exporter:
// it reports a version, stores what the saved objects import API receives
// and serves it back from the export API.
type Kibana struct {
	Version string

	mu      sync.Mutex
	objects map[string]map[string]any // "type/id" -> saved object
	order   []string
	imports int

	rules       map[string]map[string]any // detection rules by rule_id
	ruleImports []RuleImport
	rulePatches []RulePatch
	ruleErrors  map[string]ruleError // injected per-rule errors

	connectors map[string]map[string]any // by id, with their secrets
	muted      map[string]bool           // rules (by id) whose actions are snoozed
}

// NewKibana returns a stand-in reporting Kibana 9.3.0.
func NewKibana() *Kibana {
	return &Kibana{Version: "9.3.0", objects: map[string]map[string]any{}}
}

// Server starts an HTTP server for it.
func (k *Kibana) Server() *httptest.Server { return httptest.NewServer(k) }

// Objects returns the stored saved objects in import order.
func (k *Kibana) Objects() []map[string]any {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]map[string]any, 0, len(k.order))
	for _, key := range k.order {
		out = append(out, k.objects[key])
	}
	return out
}

// Imports returns the number of import requests received.
func (k *Kibana) Imports() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.imports
}

func (k *Kibana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	// Kibana refuses every request but a GET without the header.
	if r.Method != http.MethodGet && r.Header.Get("kbn-xsrf") == "" {
		kibanaError(w, http.StatusBadRequest, "Request must contain a kbn-xsrf header.")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/status":
		fmt.Fprintf(w, `{"name":"kibana","version":{"number":%q,"build_flavor":"default","build_snapshot":false},"status":{"overall":{"level":"available"}}}`, k.Version)
	case r.Method == http.MethodPost && r.URL.Path == "/api/saved_objects/_import":
		k.importObjects(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/api/saved_objects/_export":
		k.exportObjects(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/api/detection_engine/rules/_import":
		k.importRules(w, r)
	case r.URL.Path == "/api/detection_engine/rules":
		k.serveRules(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/actions/connector/"):
		k.serveConnector(w, r, strings.TrimPrefix(r.URL.Path, "/api/actions/connector/"))
	case strings.HasPrefix(r.URL.Path, "/api/alerting/rule/") && strings.HasSuffix(r.URL.Path, "/_mute_all"):
		k.serveMute(w, r, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/alerting/rule/"), "/_mute_all"), true)
	case strings.HasPrefix(r.URL.Path, "/api/alerting/rule/") && strings.HasSuffix(r.URL.Path, "/_unmute_all"):
		k.serveMute(w, r, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/alerting/rule/"), "/_unmute_all"), false)
	default:
		kibanaError(w, http.StatusNotFound, r.Method+" "+r.URL.Path)
	}
}

func (k *Kibana) importObjects(w http.ResponseWriter, r *http.Request) {
	objs, err := ndjsonUpload(r)
	if err != nil {
		writeUploadError(w, err, http.StatusBadRequest, "invalid saved object: ")
		return
	}
	var results []map[string]any
	for _, obj := range objs {
		typ, _ := obj["type"].(string)
		id, _ := obj["id"].(string)
		key := typ + "/" + id
		k.mu.Lock()
		if _, ok := k.objects[key]; !ok {
			k.order = append(k.order, key)
		}
		k.objects[key] = obj
		k.mu.Unlock()
		results = append(results, map[string]any{"type": typ, "id": id})
	}
	k.mu.Lock()
	k.imports++
	k.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "successCount": len(results), "successResults": results})
}

func (k *Kibana) exportObjects(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Objects []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"objects"`
		IncludeReferencesDeep bool `json:"includeReferencesDeep"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	var add func(key string) bool
	add = func(key string) bool {
		if seen[key] {
			return true
		}
		obj, ok := k.objects[key]
		if !ok {
			return false
		}
		seen[key] = true
		// Like Kibana (sortObjects): an object's references come before it.
		if req.IncludeReferencesDeep {
			refs, _ := obj["references"].([]any)
			for _, r := range refs {
				ref, _ := r.(map[string]any)
				add(fmt.Sprint(ref["type"], "/", ref["id"]))
			}
		}
		b, _ := json.Marshal(obj)
		out = append(out, string(b))
		return true
	}
	for _, o := range req.Objects {
		if !add(o.Type + "/" + o.ID) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"statusCode":400,"error":"Bad Request","message":"Error fetching objects to export","attributes":{"objects":[{"id":%q,"type":%q,"error":{"statusCode":404}}]}}`, o.ID, o.Type)
			return
		}
	}
	w.Header().Set("Content-Type", "application/ndjson")
	// Like Kibana: no newline after the last object.
	io.WriteString(w, strings.Join(out, "\n"))
}

// Errors of ndjsonUpload, which the import APIs answer differently.
var (
	errNotMultipart = errors.New("not a multipart upload")
	errBadLine      = errors.New("a line is not a JSON object")
)

// ndjsonUpload reads the objects of a multipart NDJSON file upload, as
// Kibana's import APIs (saved objects, detection rules) take them.
func ndjsonUpload(r *http.Request) ([]map[string]any, error) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotMultipart, err)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var objs []map[string]any
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal(line, &obj); err != nil {
				return nil, fmt.Errorf("%w: %v", errBadLine, err)
			}
			objs = append(objs, obj)
		}
	}
}

// writeUploadError answers a malformed upload as Kibana does: the media
// type error with mediaStatus, a bad line as a 400 whose message starts
// with linePrefix, anything else a plain 400.
func writeUploadError(w http.ResponseWriter, err error, mediaStatus int, linePrefix string) {
	switch {
	case errors.Is(err, errNotMultipart):
		kibanaError(w, mediaStatus, err.Error())
	case errors.Is(err, errBadLine):
		kibanaError(w, http.StatusBadRequest, linePrefix+err.Error())
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// kibanaError answers as Kibana's HTTP errors are written.
func kibanaError(w http.ResponseWriter, status int, message string) {
	w.WriteHeader(status)
	msg, _ := json.Marshal(message)
	fmt.Fprintf(w, `{"statusCode":%d,"error":%q,"message":%s}`, status, http.StatusText(status), msg)
}
