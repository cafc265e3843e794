// Package estest is an Elasticsearch stand-in that records what it is
// sent: the documents of _bulk requests (answering like Elasticsearch, with
// 409 for a `create` whose _id exists) and every other request (index
// templates, ILM policies, ...). Tests use it where they must see the
// documents; where only acceptance matters they use github.com/elastic/mock-es.
package estest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Doc is one stored document.
type Doc struct {
	ID     string
	Index  string
	Source map[string]any
	// Received is when the document was stored (its first version).
	Received time.Time
	// Pipeline is the ingest pipeline the request named for it ("" none).
	Pipeline string
}

// Request is a recorded non-bulk request.
type Request struct {
	Method string
	Path   string
	Query  string
	Body   []byte
}

// Recorder is the stand-in. Its zero value is not usable; use New.
type Recorder struct {
	// Version is the Elasticsearch version it reports.
	Version string

	mu         sync.Mutex
	docs       map[string]Doc
	order      []string
	received   int // create/index actions received, including duplicates
	duplicates int // actions answered 409
	rejected   int // actions answered with a 4xx other than 409
	requests   []Request
	bulkFault  func() int                         // a whole-request status to answer instead (0: none)
	itemFault  func(id string, source []byte) int // an item status to answer instead (0: none)
	bulkCalls  int
	autoIDs    int
	itemErrors map[int][2]string // error type and reason per injected item status
	maxBody    int               // larger request bodies are answered 413, as a proxy does (0: no limit)
	tooLarge   int               // requests answered 413
	pipelines  map[string][]byte // ingest pipelines put, by id
	// recordOnly keeps each document's id and arrival only (SetRecordOnly).
	recordOnly bool

	indexTemplates     map[string]indexTemplate
	componentTemplates map[string]componentTemplate
	// indices are the mappings of the indices and data streams written
	// to, made from the templates on their first document and extended
	// by the dynamic mappings of the documents accepted since.
	indices map[string]*indexMapping
	// refused are the documents refused for their content, in order.
	refused []Refusal
	geo     GeoIPTable
}

// Refusal is a document Elasticsearch refused for its content (a mapping
// error, a missing pipeline).
type Refusal struct {
	ID, Index string
	Type      string
	Reason    string
	Source    []byte
}

// Refused are the documents refused for their content, in order.
func (r *Recorder) Refused() []Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Refusal(nil), r.refused...)
}

// SetMaxBodyBytes makes requests whose body (as sent, compressed or not) is
// larger than n answered 413, as a reverse proxy in front of Elasticsearch
// with a body size limit does (nginx's client_max_body_size is 1 MiB by
// default). 0 removes the limit.
func (r *Recorder) SetMaxBodyBytes(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxBody = n
}

// TooLarge is the number of requests answered 413.
func (r *Recorder) TooLarge() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tooLarge
}

// New returns a recorder that reports Elasticsearch 9.3.0.
func New() *Recorder {
	return &Recorder{Version: "9.3.0", docs: map[string]Doc{}}
}

// SetRecordOnly makes the recorder note each document's id and arrival
// and accept it, without pipelines, mappings or keeping its source: the
// benchmark's live runs measure when documents arrive, at rates where
// applying the mappings and keeping hundreds of thousands of sources in
// the benchmark's own process would take the cores the beat runs on. The
// tests never use it: they need Elasticsearch's refusals.
func (r *Recorder) SetRecordOnly() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recordOnly = true
}

// Server starts an HTTP server for the recorder.
func (r *Recorder) Server() *httptest.Server { return httptest.NewServer(r) }

// SetBulkFault makes every _bulk request answer f()'s status when it is
// not 0 (503 for an outage, for example).
func (r *Recorder) SetBulkFault(f func() int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bulkFault = f
}

// SetItemFault makes bulk items answer f(id, source)'s status when it is
// not 0 (429, or 400 for a mapping error).
func (r *Recorder) SetItemFault(f func(id string, source []byte) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.itemFault = f
}

// SetItemError sets the error type and reason answered with an injected
// item status, as Elasticsearch would explain it (a 400's
// mapper_parsing_exception, say).
func (r *Recorder) SetItemError(status int, typ, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.itemErrors == nil {
		r.itemErrors = map[int][2]string{}
	}
	r.itemErrors[status] = [2]string{typ, reason}
}

// Docs returns the stored documents in arrival order.
func (r *Recorder) Docs() []Doc {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Doc, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.docs[id])
	}
	return out
}

// Doc returns the document with the given _id.
func (r *Recorder) Doc(id string) (Doc, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.docs[id]
	return d, ok
}

// Count returns the number of stored documents.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.docs)
}

// Stats returns how many actions were received, answered 409 (replays of
// a stored _id) and rejected.
func (r *Recorder) Stats() (received, duplicates, rejected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received, r.duplicates, r.rejected
}

// BulkCalls returns the number of _bulk requests served.
func (r *Recorder) BulkCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bulkCalls
}

// Pipeline is the body of the ingest pipeline put with id, if any.
func (r *Recorder) Pipeline(id string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.pipelines[id]
	return b, ok
}

// Requests returns the recorded non-bulk requests.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	r.mu.Lock()
	limit := r.maxBody
	if limit > 0 && len(raw) > limit {
		r.tooLarge++
	}
	r.mu.Unlock()
	if limit > 0 && len(raw) > limit {
		// As nginx answers: an HTML page, not Elasticsearch's JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		io.WriteString(w, "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>\n")
		return
	}
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	path := req.URL.Path
	switch {
	case path == "/" && (req.Method == http.MethodGet || req.Method == http.MethodHead):
		fmt.Fprintf(w, `{"name":"estest","cluster_name":"estest","cluster_uuid":"estest-cluster-uuid","version":{"number":%q,"build_flavor":"default"},"tagline":"You Know, for Search"}`, r.Version)
	case path == "/_license" && req.Method == http.MethodGet:
		io.WriteString(w, `{"license":{"status":"active","uid":"estest","type":"basic"}}`)
	case path == "/_xpack" && req.Method == http.MethodGet:
		// What libbeat's monitoring reporter asks before it ships stats.
		io.WriteString(w, `{"features":{"monitoring":{"available":true,"enabled":true}}}`)
	case strings.HasSuffix(path, "/_bulk") && req.Method == http.MethodPost:
		r.bulk(w, req)
	case strings.HasPrefix(path, "/_index_template/") || strings.HasPrefix(path, "/_component_template/"):
		body, _ := readBody(req)
		r.templateRequest(w, req, body)
	case strings.HasPrefix(path, "/_ingest/pipeline/") && (req.Method == http.MethodGet || req.Method == http.MethodHead):
		id := strings.TrimPrefix(path, "/_ingest/pipeline/")
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: path, Query: req.URL.RawQuery})
		body, ok := r.pipelines[id]
		r.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{}`)
			return
		}
		fmt.Fprintf(w, `{%q:%s}`, id, body)
	case strings.HasPrefix(path, "/_ingest/pipeline/") && req.Method == http.MethodPut:
		body, _ := readBody(req)
		id := strings.TrimPrefix(path, "/_ingest/pipeline/")
		if !json.Valid(body) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"type":"parse_exception","reason":"request body is not JSON"},"status":400}`)
			return
		}
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: path, Query: req.URL.RawQuery, Body: body})
		if r.pipelines == nil {
			r.pipelines = map[string][]byte{}
		}
		r.pipelines[id] = body
		r.mu.Unlock()
		io.WriteString(w, `{"acknowledged":true}`)
	default:
		body, _ := readBody(req)
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: path, Query: req.URL.RawQuery, Body: body})
		r.mu.Unlock()
		switch req.Method {
		case http.MethodGet, http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"type":"resource_not_found_exception","reason":"%s not found"},"status":404}`, path)
		default:
			io.WriteString(w, `{"acknowledged":true}`)
		}
	}
}

func readBody(req *http.Request) ([]byte, error) {
	var rd io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	}
	return io.ReadAll(rd)
}

func (r *Recorder) bulk(w http.ResponseWriter, req *http.Request) {
	body, err := readBody(req)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"type":"parse_exception","reason":%q},"status":400}`, err.Error())
		return
	}
	r.mu.Lock()
	r.bulkCalls++
	fault := r.bulkFault
	itemFault := r.itemFault
	r.mu.Unlock()
	if fault != nil {
		if status := fault(); status != 0 {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"type":"injected","reason":"estest: injected status %d"},"status":%d}`, status, status)
			return
		}
	}

	type itemResult map[string]map[string]any
	var (
		items     []itemResult
		hasErrors bool
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var action map[string]struct {
			Index    string `json:"_index"`
			ID       string `json:"_id"`
			Pipeline string `json:"pipeline"`
		}
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"type":"illegal_argument_exception","reason":"malformed action line"},"status":400}`)
			return
		}
		var op string
		for k := range action {
			op = k
		}
		meta := action[op]
		if !sc.Scan() {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"type":"illegal_argument_exception","reason":"action without a document"},"status":400}`)
			return
		}
		src := append([]byte(nil), sc.Bytes()...)
		if meta.ID == "" {
			// Elasticsearch generates an id (monitoring documents and
			// other writers that do not set one).
			r.mu.Lock()
			r.autoIDs++
			meta.ID = fmt.Sprintf("auto-%d", r.autoIDs)
			r.mu.Unlock()
		}
		pipeline := meta.Pipeline
		if pipeline == "" {
			pipeline = req.URL.Query().Get("pipeline")
		}
		status, errType, reason := r.item(op, meta.Index, meta.ID, pipeline, src, itemFault)
		res := map[string]any{"_index": meta.Index, "_id": meta.ID, "status": status}
		if errType != "" {
			res["error"] = map[string]any{"type": errType, "reason": reason}
		}
		if status >= 300 {
			hasErrors = true
		}
		items = append(items, itemResult{op: res})
	}
	if err := sc.Err(); err != nil {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		fmt.Fprintf(w, `{"error":{"type":"parse_exception","reason":%q},"status":413}`, err.Error())
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": hasErrors, "items": items})
}

// item answers one bulk item as Elasticsearch would: its ingest pipeline
// (the request's, else the index's default_pipeline) run first, then the
// index's mapping applied, then the write. It returns the item's status
// and, for an error, its type and reason.
func (r *Recorder) item(op, index, id, pipeline string, src []byte, itemFault func(string, []byte) int) (int, string, string) {
	refuse := func(status int, typ, reason string) (int, string, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.received++
		if status != http.StatusTooManyRequests {
			r.rejected++
		}
		if status == http.StatusBadRequest {
			r.refused = append(r.refused, Refusal{ID: id, Index: index, Type: typ, Reason: reason, Source: src})
		}
		return status, typ, reason
	}
	r.mu.Lock()
	if r.recordOnly {
		defer r.mu.Unlock()
		r.received++
		if _, exists := r.docs[id]; exists {
			r.duplicates++
			return http.StatusConflict, "version_conflict_engine_exception", fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", id)
		}
		r.docs[id] = Doc{ID: id, Index: index, Received: time.Now(), Pipeline: pipeline}
		r.order = append(r.order, id)
		return http.StatusCreated, "", ""
	}
	r.mu.Unlock()
	if len(id) > 512 {
		// IndexRequest.validate
		return refuse(http.StatusBadRequest, "action_request_validation_exception", fmt.Sprintf("Validation Failed: 1: id [%s...] is too long, must be no longer than 512 bytes but was: %d;", id[:10], len(id)))
	}
	r.mu.Lock()
	m, err := r.mappingFor(index)
	if err == nil && pipeline == "" {
		pipeline = m.defaultPipeline
	}
	pipelineBody, pipelineExists := r.pipelines[pipeline]
	geo := r.geo
	r.mu.Unlock()
	if err != nil {
		return refuse(http.StatusBadRequest, "illegal_argument_exception", err.Error())
	}
	if pipeline != "" && pipelineBody == nil && !pipelineExists {
		return refuse(http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("pipeline with id [%s] does not exist", pipeline))
	}
	if itemFault != nil {
		if st := itemFault(id, src); st != 0 {
			typ, reason := "injected_exception", fmt.Sprintf("estest: injected status %d", st)
			r.mu.Lock()
			if e, ok := r.itemErrors[st]; ok {
				typ, reason = e[0], e[1]
			}
			r.mu.Unlock()
			if st >= 400 && st < 500 {
				return refuse(st, typ, reason)
			}
			r.mu.Lock()
			r.received++
			r.mu.Unlock()
			return st, typ, reason
		}
	}
	if m.dataStream && op != "create" {
		// TransportBulkAction: a data stream only takes op_type create.
		return refuse(http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("only write ops with an op_type of create are allowed in data streams"))
	}
	if pipeline != "" {
		out, perr := runPipeline(pipelineBody, src, time.Now(), geo)
		if perr != nil {
			return refuse(http.StatusBadRequest, "illegal_argument_exception", perr.Error())
		}
		src = out
	}
	r.mu.Lock()
	derr := m.parse(id, src)
	r.mu.Unlock()
	if derr != nil {
		reason := derr.Reason
		return refuse(http.StatusBadRequest, derr.Type, reason)
	}
	status := r.store(op, index, id, pipeline, src)
	switch status {
	case http.StatusConflict:
		return status, "version_conflict_engine_exception", fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", id)
	case http.StatusBadRequest:
		return status, "document_parsing_exception", "failed to parse"
	}
	return status, "", ""
}

func (r *Recorder) store(op, index, id, pipeline string, src []byte) int {
	var source map[string]any
	if err := json.Unmarshal(src, &source); err != nil {
		// Cannot happen: the mapping parsed the document.
		r.mu.Lock()
		r.received++
		r.rejected++
		r.mu.Unlock()
		return http.StatusBadRequest
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received++
	if id == "" {
		id = fmt.Sprintf("auto-%d", r.received)
	}
	if _, exists := r.docs[id]; exists {
		if op == "create" {
			r.duplicates++
			return http.StatusConflict
		}
		r.docs[id] = Doc{ID: id, Index: index, Source: source, Received: r.docs[id].Received, Pipeline: pipeline}
		return http.StatusOK
	}
	r.docs[id] = Doc{ID: id, Index: index, Source: source, Received: time.Now(), Pipeline: pipeline}
	r.order = append(r.order, id)
	return http.StatusCreated
}
