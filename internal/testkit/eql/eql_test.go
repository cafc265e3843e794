package eql

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

var types = Types{
	"event.action":           "keyword",
	"user.name":              "keyword",
	"teleport.audit.id":      "keyword",
	"teleport.audit.state":   "keyword",
	"teleport.audit.success": "boolean",
	"source.ip":              "ip",
	"teleport.ttl":           "long",
	"message":                "match_only_text",
}

func doc(action, user, id, state string) map[string]any {
	d := mapstr.M{"event": mapstr.M{"action": action}, "teleport": mapstr.M{"audit": mapstr.M{"id": id, "state": state, "success": true}}}
	if user != "" {
		d["user"] = mapstr.M{"name": user}
	}
	return d
}

func TestEventQuery(t *testing.T) {
	d := doc("access_request.update", "carol", "r1", "APPROVED")
	d["source"] = mapstr.M{"ip": "203.0.113.5"}
	d["teleport"].(mapstr.M)["ttl"] = int64(90000)
	for q, want := range map[string]bool{
		`any where event.action == "access_request.update"`:                                 true,
		`any where event.action == "ACCESS_REQUEST.UPDATE"`:                                 false, // == is case-sensitive
		`any where event.action : "ACCESS_REQUEST.*"`:                                       true,  // : is not, and takes *
		`any where event.action : ("x", "access_request.update")`:                           true,
		`any where event.action in ("x", "y")`:                                              false,
		`any where event.action != "x" and teleport.audit.state == "APPROVED"`:              true,
		`any where not (event.action == "access_request.update" or user.name == "x")`:       false,
		`any where teleport.audit.success == true`:                                          true,
		`any where source.ip == "203.0.113.5"`:                                              true,
		`any where teleport.ttl == 90000`:                                                   true,
		`any where user.name != null`:                                                       true,
		`any where user.name == null`:                                                       false,
		`any where teleport.audit.state != "x" and event.action == "access_request.update"`: true,
	} {
		parsed, err := Parse(q, types)
		require.NoError(t, err, q)
		require.False(t, parsed.IsSequence())
		require.Equal(t, want, parsed.Match(d), q)
	}
	// != on a field the document lacks is false, as in Elasticsearch.
	q, err := Parse(`any where user.name != "x"`, types)
	require.NoError(t, err)
	require.False(t, q.Match(doc("a", "", "r", "s")))
}

func TestTypeErrors(t *testing.T) {
	for q, msg := range map[string]string{
		`any where teleport.audit.success == "true"`:                                         "compare it with true or false",
		`any where teleport.ttl == "1"`:                                                      "is not a number",
		`any where user.nam == "a"`:                                                          "not in the index template",
		`any where message == "a"`:                                                           "compares whole values",
		`any where user.name == 'a'`:                                                         "double-quoted",
		`any where user.name : "a?c"`:                                                        "? in a : pattern",
		`process where user.name == "a"`:                                                     "only any is modelled",
		`sequence [any where user.name == "a"]`:                                              "at least two",
		`sequence by nope [any where user.name == "a"] [any where user.name == "b"]`:         "join field nope",
		`sequence [any where user.name == "a"] by user.name [any where user.name == "b"]`:    "as many by fields",
		`sequence with maxspan=5x [any where user.name == "a"] [any where user.name == "b"]`: "maxspan",
		`any where user.name == "a" and`:                                                     "a field is missing",
		`any where user.name == "a\q"`:                                                       "unknown escape",
	} {
		_, err := Parse(q, types)
		require.ErrorContains(t, err, msg, q)
	}
}

const selfApproved = `sequence by teleport.audit.id with maxspan=1d
  [any where event.action == "access_request.create"] by user.name
  [any where event.action == "access_request.update" and teleport.audit.state == "APPROVED"] by user.name`

func TestSequence(t *testing.T) {
	q, err := Parse(selfApproved, types)
	require.NoError(t, err)
	require.True(t, q.IsSequence())
	require.Equal(t, []string{"teleport.audit.id", "event.action", "user.name", "teleport.audit.state"}, q.Fields())
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(m int, d map[string]any) Event {
		return Event{Time: t0.Add(time.Duration(m) * time.Minute), Doc: d}
	}

	// The requester approves their own request.
	seqs := q.Sequences([]Event{
		at(0, doc("access_request.create", "carol", "r1", "PENDING")),
		at(5, doc("access_request.update", "carol", "r1", "APPROVED")),
	})
	require.Len(t, seqs, 1)
	require.Len(t, seqs[0], 2)

	for name, evs := range map[string][]Event{
		"approved by someone else": {
			at(0, doc("access_request.create", "carol", "r1", "PENDING")),
			at(5, doc("access_request.update", "dave", "r1", "APPROVED")),
		},
		"another request of the same user": {
			at(0, doc("access_request.create", "carol", "r1", "PENDING")),
			at(5, doc("access_request.update", "carol", "r2", "APPROVED")),
		},
		"denied by the requester": {
			at(0, doc("access_request.create", "carol", "r1", "PENDING")),
			at(5, doc("access_request.update", "carol", "r1", "DENIED")),
		},
		"approval before the request (out of order)": {
			at(5, doc("access_request.create", "carol", "r1", "PENDING")),
			at(0, doc("access_request.update", "carol", "r1", "APPROVED")),
		},
		"beyond maxspan": {
			at(0, doc("access_request.create", "carol", "r1", "PENDING")),
			at(24*60+1, doc("access_request.update", "carol", "r1", "APPROVED")),
		},
		"no user on the update": {
			at(0, doc("access_request.create", "carol", "r1", "PENDING")),
			at(5, doc("access_request.update", "", "r1", "APPROVED")),
		},
	} {
		require.Empty(t, q.Sequences(evs), name)
	}
}
