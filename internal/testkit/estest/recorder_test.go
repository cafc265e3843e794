package estest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func bulk(t *testing.T, url string, lines ...string) map[string]any {
	t.Helper()
	body := bytes.NewBufferString("")
	for _, l := range lines {
		body.WriteString(l + "\n")
	}
	resp, err := http.Post(url+"/_bulk", "application/x-ndjson", body)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	out["http_status"] = resp.StatusCode
	return out
}

func itemStatus(res map[string]any, i int) int {
	items := res["items"].([]any)
	for _, v := range items[i].(map[string]any) {
		return int(v.(map[string]any)["status"].(float64))
	}
	return 0
}

func TestRecorderAnswersLikeElasticsearch(t *testing.T) {
	r := New()
	srv := r.Server()
	defer srv.Close()

	res := bulk(t, srv.URL,
		`{"create":{"_index":"ds","_id":"a"}}`, `{"x":1}`,
		`{"create":{"_index":"ds","_id":"b"}}`, `{"x":2}`,
		`{"create":{"_index":"ds","_id":"a"}}`, `{"x":3}`,
	)
	require.Equal(t, true, res["errors"])
	require.Equal(t, 201, itemStatus(res, 0))
	require.Equal(t, 201, itemStatus(res, 1))
	require.Equal(t, 409, itemStatus(res, 2), "a create with an existing _id is a conflict")
	require.Equal(t, 2, r.Count())
	d, ok := r.Doc("a")
	require.True(t, ok)
	require.Equal(t, float64(1), d.Source["x"], "the first document is kept")
	received, dups, rejected := r.Stats()
	require.Equal(t, []int{3, 1, 0}, []int{received, dups, rejected})

	r.SetItemFault(func(id string, _ []byte) int {
		if id == "c" {
			return 429
		}
		return 0
	})
	res = bulk(t, srv.URL, `{"create":{"_index":"ds","_id":"c"}}`, `{"x":4}`, `{"create":{"_index":"ds","_id":"d"}}`, `{"x":5}`)
	require.Equal(t, 429, itemStatus(res, 0))
	require.Equal(t, 201, itemStatus(res, 1))

	r.SetBulkFault(func() int { return 503 })
	res = bulk(t, srv.URL, `{"create":{"_index":"ds","_id":"e"}}`, `{"x":6}`)
	require.Equal(t, 503, res["http_status"])
	require.Equal(t, 3, r.Count())

	resp, err := http.Get(srv.URL + "/_index_template/teleportbeat")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode)
	require.Len(t, r.Requests(), 1)
}

// TestRecordOnlyNotesArrivals: for the benchmark, documents are accepted
// as they come (no pipeline, no mapping: a document a mapping would refuse
// too), each id once, with its arrival and without its source.
func TestRecordOnlyNotesArrivals(t *testing.T) {
	r := New()
	r.SetRecordOnly()
	srv := r.Server()
	defer srv.Close()
	res := bulk(t, srv.URL,
		`{"create":{"_index":"ds","_id":"a","pipeline":"missing"}}`, `{"x":1}`,
		`{"create":{"_index":"ds","_id":"b"}}`, `{"x":{"y":1}}`,
		`{"create":{"_index":"ds","_id":"a"}}`, `{"x":3}`,
	)
	require.Equal(t, 201, itemStatus(res, 0), "no pipeline is run")
	require.Equal(t, 201, itemStatus(res, 1), "no mapping is applied")
	require.Equal(t, 409, itemStatus(res, 2))
	d, ok := r.Doc("a")
	require.True(t, ok)
	require.False(t, d.Received.IsZero())
	require.Nil(t, d.Source, "no source kept")
	received, dups, _ := r.Stats()
	require.Equal(t, []int{3, 1}, []int{received, dups})
}
