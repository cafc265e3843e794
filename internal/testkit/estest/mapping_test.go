package estest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The stand-in refuses what Elasticsearch refuses: each case is a mapping
// and documents, with Elasticsearch's answer (status and the start of its
// reason), as Elasticsearch's DocumentParserTests, DynamicMappingTests,
// FlattenedFieldMapperTests, NumberFieldMapperTests and
// MapperServiceTests have them.

const testTemplate = `{
  "index_patterns": ["ds-*"],
  "priority": 150,
  "data_stream": {},
  "template": {
    "settings": {"index": {"mapping": {"total_fields": {"limit": 40}, "depth": {"limit": 5}}}},
    "mappings": {
      "date_detection": false,
      "dynamic_templates": [
        {"raw_strings": {"path_match": "raw.*", "match_mapping_type": "string", "mapping": {"type": "keyword"}}},
        {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}
      ],
      "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "match_only_text"},
        "tags": {"type": "keyword", "ignore_above": 1024},
        "user": {"properties": {"name": {"type": "keyword", "ignore_above": 1024}}},
        "count": {"type": "long"},
        "small": {"type": "byte"},
        "ratio": {"type": "float"},
        "ok": {"type": "boolean"},
        "when": {"type": "date"},
        "addr": {"type": "ip"},
        "labels": {"type": "flattened"},
        "deep": {"type": "flattened", "depth_limit": 2},
        "short_labels": {"type": "flattened", "ignore_above": 10},
        "raw_kw": {"type": "keyword"},
        "alias_of_user": {"type": "alias", "path": "user.name"},
        "strict_part": {"dynamic": "strict", "properties": {"known": {"type": "keyword"}}},
        "loose_part": {"dynamic": false, "properties": {}},
        "off": {"type": "object", "enabled": false},
        "dataset": {"type": "constant_keyword", "value": "teleportbeat.audit"}
      }
    }
  }
}`

func newTestRecorder(t *testing.T) (*Recorder, string) {
	t.Helper()
	r := New()
	srv := r.Server()
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/_index_template/test", strings.NewReader(testTemplate))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	return r, srv.URL
}

func itemError(res map[string]any, i int) string {
	for _, v := range res["items"].([]any)[i].(map[string]any) {
		if e, ok := v.(map[string]any)["error"].(map[string]any); ok {
			return fmt.Sprint(e["type"], ": ", e["reason"])
		}
	}
	return ""
}

func TestMappingRefusesWhatElasticsearchRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		status    int
		reason    string // start of the error ("" when accepted)
	}{
		{"accepted", `{"@timestamp":"2024-05-01T10:00:00.123456Z","user":{"name":"alice"},"count":"12","ratio":1,"ok":"true","when":1714557600000,"addr":"2001:db8::1"}`, 201, ""},
		{"no timestamp in a data stream", `{"user":{"name":"a"}}`, 400, "illegal_argument_exception: data stream timestamp field [@timestamp] is missing"},
		{"empty field name", `{"@timestamp":"2024-05-01T10:00:00Z","":"x"}`, 400, "document_parsing_exception: failed to parse: Field name cannot be an empty string"},
		{"name starting with a dot", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{".lead":"x"}}`, 400, "document_parsing_exception: failed to parse: field name cannot contain only whitespace: ['.lead']"},
		{"two dots in a row", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"x..y":"x"}}`, 400, "document_parsing_exception: failed to parse: field name cannot contain only whitespace: ['x..y']"},
		{"only dots", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"..":"x"}}`, 400, "document_parsing_exception: failed to parse: field name cannot contain only dots"},
		{"blank name", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"  ":"x"}}`, 400, "document_parsing_exception: Field name cannot contain only whitespace: [  ]"},
		{"a dotted name meets a value", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"app":"web","app.kubernetes.io/name":"web"}}`, 400, "document_parsing_exception: failed to parse field [raw.app] of type [keyword]"},
		{"a value meets a dotted name", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"app.kubernetes.io/name":"web","app":"web"}}`, 400, "document_parsing_exception: object mapping for [raw.app] tried to parse field [app] as object, but found a concrete value"},
		{"object where a keyword is mapped", `{"@timestamp":"2024-05-01T10:00:00Z","user":{"name":{"first":"a"}}}`, 400, "document_parsing_exception: failed to parse field [user.name] of type [keyword] in document with id 'id'. Preview of field's value: '{first=a}'"},
		{"value where an object is mapped", `{"@timestamp":"2024-05-01T10:00:00Z","user":"alice"}`, 400, "document_parsing_exception: object mapping for [user] tried to parse field [user] as object, but found a concrete value"},
		{"list of values where an object is mapped", `{"@timestamp":"2024-05-01T10:00:00Z","user":[{"name":"a"},"b"]}`, 400, "document_parsing_exception: object mapping for [user]"},
		{"not a number", `{"@timestamp":"2024-05-01T10:00:00Z","count":"twelve"}`, 400, "document_parsing_exception: failed to parse field [count] of type [long]"},
		{"a fraction is coerced", `{"@timestamp":"2024-05-01T10:00:00Z","count":1.5}`, 201, ""},
		{"an empty string is a null number", `{"@timestamp":"2024-05-01T10:00:00Z","count":""}`, 201, ""},
		{"out of a long's range", `{"@timestamp":"2024-05-01T10:00:00Z","count":18446744073709551615}`, 400, "document_parsing_exception: failed to parse field [count] of type [long]"},
		{"out of a byte's range", `{"@timestamp":"2024-05-01T10:00:00Z","small":300}`, 400, "document_parsing_exception: failed to parse field [small] of type [byte]"},
		{"a boolean is not a number", `{"@timestamp":"2024-05-01T10:00:00Z","count":true}`, 400, "document_parsing_exception: failed to parse field [count] of type [long]"},
		{"NaN is not finite", `{"@timestamp":"2024-05-01T10:00:00Z","ratio":"NaN"}`, 400, "document_parsing_exception: failed to parse field [ratio] of type [float]"},
		{"yes is not a boolean", `{"@timestamp":"2024-05-01T10:00:00Z","ok":"yes"}`, 400, "document_parsing_exception: failed to parse field [ok] of type [boolean]"},
		{"a number is not a boolean", `{"@timestamp":"2024-05-01T10:00:00Z","ok":1}`, 400, "document_parsing_exception: failed to parse field [ok] of type [boolean]"},
		{"not a date", `{"@timestamp":"2024-05-01T10:00:00Z","when":"yesterday"}`, 400, "document_parsing_exception: failed to parse field [when] of type [date]"},
		{"a date without a zone", `{"@timestamp":"2024-05-01T10:00:00","when":"2024-05-01"}`, 201, ""},
		{"not an IP", `{"@timestamp":"2024-05-01T10:00:00Z","addr":"10.0.0.1:3022"}`, 400, "document_parsing_exception: failed to parse field [addr] of type [ip]"},
		{"flattened takes objects only", `{"@timestamp":"2024-05-01T10:00:00Z","labels":"env=prod"}`, 400, "document_parsing_exception: failed to parse field [labels] of type [flattened]"},
		{"flattened takes any key", `{"@timestamp":"2024-05-01T10:00:00Z","labels":{"app":"x","app.kubernetes.io/name":"y","":"z",".lead":"w"}}`, 201, ""},
		{"flattened depth", `{"@timestamp":"2024-05-01T10:00:00Z","deep":{"a":{"b":{"c":1}}}}`, 400, "document_parsing_exception: failed to parse: The provided [flattened] field [deep] exceeds the maximum depth limit of [2]."},
		{"flattened immense value", `{"@timestamp":"2024-05-01T10:00:00Z","labels":{"k":"` + strings.Repeat("x", 32766) + `"}}`, 400, "document_parsing_exception: failed to parse: Flattened field [labels] contains one immense field"},
		{"flattened ignore_above skips a long value", `{"@timestamp":"2024-05-01T10:00:00Z","short_labels":{"k":"` + strings.Repeat("x", 40000) + `"}}`, 201, ""},
		{"keyword immense term", `{"@timestamp":"2024-05-01T10:00:00Z","raw_kw":"` + strings.Repeat("x", 32767) + `"}`, 400, "illegal_argument_exception: Document contains at least one immense term in field=\"raw_kw\""},
		{"keyword ignore_above skips a long value", `{"@timestamp":"2024-05-01T10:00:00Z","tags":["` + strings.Repeat("x", 40000) + `"]}`, 201, ""},
		{"a dynamic template without ignore_above", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"long_one":"` + strings.Repeat("x", 32767) + `"}}`, 400, "illegal_argument_exception: Document contains at least one immense term in field=\"raw.long_one\""},
		{"alias", `{"@timestamp":"2024-05-01T10:00:00Z","alias_of_user":"a"}`, 400, "document_parsing_exception: Cannot write to a field alias [alias_of_user]."},
		{"strict object", `{"@timestamp":"2024-05-01T10:00:00Z","strict_part":{"other":"x"}}`, 400, "strict_dynamic_mapping_exception: [1:2] mapping set to strict, dynamic introduction of [other] within [strict_part] is not allowed"},
		{"dynamic false ignores new fields", `{"@timestamp":"2024-05-01T10:00:00Z","loose_part":{"anything":{"deep":1}}}`, 201, ""},
		{"disabled object takes anything", `{"@timestamp":"2024-05-01T10:00:00Z","off":{"x":[1,"a",{"b":2}]}}`, 201, ""},
		{"constant keyword", `{"@timestamp":"2024-05-01T10:00:00Z","dataset":"teleportbeat.session"}`, 400, "document_parsing_exception: failed to parse field [dataset] of type [constant_keyword]"},
		{"metadata field in the source", `{"@timestamp":"2024-05-01T10:00:00Z","_id":"x"}`, 400, "document_parsing_exception: [1:2] Field [_id] is a metadata field"},
		{"depth limit", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"a":{"b":{"c":{"d":{"e":"x"}}}}}}`, 400, "illegal_argument_exception: Limit of mapping depth [5] has been exceeded due to object field [raw.a.b.c.d]"},
		{"within the depth limit", `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"a":{"b":{"c":{"d":"x"}}}}}`, 201, ""},
		{"total fields limit", `{"@timestamp":"2024-05-01T10:00:00Z","many":{` + manyFields(30) + `}}`, 400, "illegal_argument_exception: Limit of total fields [40] has been exceeded while adding new fields [31]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, url := newTestRecorder(t)
			res := bulk(t, url, `{"create":{"_index":"ds-a","_id":"id"}}`, tc.doc)
			require.Equal(t, tc.status, itemStatus(res, 0), itemError(res, 0))
			if tc.reason == "" {
				require.Equal(t, 1, r.Count())
				return
			}
			require.True(t, strings.HasPrefix(itemError(res, 0), tc.reason), "got %q", itemError(res, 0))
			require.Len(t, r.Refused(), 1)
			require.Equal(t, 0, r.Count())
		})
	}
}

func manyFields(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"f%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

// A field's shape is learned from the first document that has it and kept:
// a later document with the other shape is refused, also by a new process
// writing to the same index (the beat restarted).
func TestMappingLearnedFromEarlierDocumentsIsKept(t *testing.T) {
	r, url := newTestRecorder(t)
	res := bulk(t, url,
		`{"create":{"_index":"ds-a","_id":"1"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"value":{"op":"add"}}}`,
		`{"create":{"_index":"ds-a","_id":"2"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","raw":{"value":"plain"}}`,
		`{"create":{"_index":"ds-a","_id":"3"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","n":5}`,
		`{"create":{"_index":"ds-a","_id":"4"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","n":"five"}`,
	)
	require.Equal(t, 201, itemStatus(res, 0))
	require.Equal(t, 400, itemStatus(res, 1))
	require.Contains(t, itemError(res, 1), "object mapping for [raw.value] tried to parse field [value] as object, but found a concrete value")
	require.Equal(t, 201, itemStatus(res, 2))
	require.Equal(t, 400, itemStatus(res, 3), "n was mapped as long by the document before")
	require.Equal(t, "long", r.MappedFields("ds-a")["n"])

	// A refused document adds no mapping.
	res = bulk(t, url, `{"create":{"_index":"ds-a","_id":"5"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","fresh":"x","count":"bad"}`)
	require.Equal(t, 400, itemStatus(res, 0))
	require.NotContains(t, r.MappedFields("ds-a"), "fresh")

	// Within one document too, the first value maps the field.
	res = bulk(t, url, `{"create":{"_index":"ds-a","_id":"6"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","m":[3,"three"]}`)
	require.Equal(t, 400, itemStatus(res, 0))
}

func TestDataStreamsTakeCreateOnly(t *testing.T) {
	_, url := newTestRecorder(t)
	res := bulk(t, url, `{"index":{"_index":"ds-a","_id":"1"}}`, `{"@timestamp":"2024-05-01T10:00:00Z"}`)
	require.Equal(t, 400, itemStatus(res, 0))
	require.Contains(t, itemError(res, 0), "only write ops with an op_type of create are allowed in data streams")
}

// Without a template, Elasticsearch's default dynamic mapping applies:
// strings become text with a keyword sub-field (or dates, when they look
// like one), integers long, other numbers float.
func TestDefaultDynamicMapping(t *testing.T) {
	r := New()
	srv := r.Server()
	defer srv.Close()
	res := bulk(t, srv.URL,
		`{"index":{"_index":"plain","_id":"1"}}`, `{"s":"text","d":"2024-05-01","i":1,"f":1.5,"b":true}`,
		`{"index":{"_index":"plain","_id":"2"}}`, `{"d":"not a date"}`,
	)
	require.Equal(t, 201, itemStatus(res, 0))
	require.Equal(t, map[string]string{"s": "text", "d": "date", "i": "long", "f": "float", "b": "boolean"}, r.MappedFields("plain"))
	require.Equal(t, 400, itemStatus(res, 1), "d was detected as a date")
}

func TestIngestPipelineRunsBeforeTheMapping(t *testing.T) {
	r, url := newTestRecorder(t)
	req, _ := http.NewRequest(http.MethodPut, url+"/_ingest/pipeline/p", strings.NewReader(`{"processors":[
		{"set":{"field":"event.ingested","value":"{{{_ingest.timestamp}}}"}},
		{"rename":{"field":"from","target_field":"to","ignore_missing":true}},
		{"geoip":{"field":"source.ip","target_field":"source.geo","ignore_missing":true}}]}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	r.SetGeoIP(GeoIPTable{"GeoLite2-City.mmdb": {"192.0.2.1": {"country_iso_code": "NL"}}})
	res := bulk(t, url, `{"create":{"_index":"ds-a","_id":"1","pipeline":"p"}}`, `{"@timestamp":"2024-05-01T10:00:00Z","from":"x","source":{"ip":"192.0.2.1"}}`)
	require.Equal(t, 201, itemStatus(res, 0), itemError(res, 0))
	d, _ := r.Doc("1")
	require.NotEmpty(t, d.Source["event"].(map[string]any)["ingested"])
	require.Equal(t, "x", d.Source["to"])
	require.Equal(t, "NL", d.Source["source"].(map[string]any)["geo"].(map[string]any)["country_iso_code"])
}
