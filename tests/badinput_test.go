package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestBadInputHasADefinedOutcome serves, among ordinary events, the odd
// ones a real cluster can produce, and checks what becomes of each:
//   - a 5 MiB event (a huge database query) is stored whole;
//   - invalid UTF-8 arrives as U+FFFD (Teleport's JSON decoding replaces
//     it before the event is put on the wire, where strings must be UTF-8);
//   - an event type teleportbeat does not know is stored with its raw
//     fields, event.action set and event.kind "event";
//   - an event stamped in the future (a node's clock ahead) is read once
//     its time has passed, with its own @timestamp;
//   - a field whose type differs from the template: where Teleport itself
//     uses both shapes (user: a string, or an object), the other shape goes
//     to the field's alternate (user_object); any other misfit is passed
//     through unchanged, and Elasticsearch rejects or stores it per
//     non_indexable_policy (TestMappingErrors...).
//
// Events without a time cannot be served by Teleport (it stamps every event)
// and are tagged teleport_missing_time by the mapper
// (internal/ecs TestMissingTimeIsTagged); duplicated uids are kept once
// (TestShipsEveryEventToElasticsearch and the reader's tests).
func TestBadInputHasADefinedOutcome(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	normal := e.addGenerated(200)
	now := time.Now().UTC()
	mk := func(fields map[string]any) *teleporttest.Event {
		ev, err := teleporttest.NewEvent(fields)
		require.NoError(t, err)
		return ev
	}
	huge := strings.Repeat("SELECT * FROM t WHERE x = 1; ", 5<<20/29+1)
	odd := []*teleporttest.Event{
		mk(map[string]any{"event": "db.session.query", "code": "TDB02I", "uid": "bad-huge", "time": now.Add(-time.Minute).Format(time.RFC3339Nano),
			"user": "alice", "db_query": huge}),
		mk(map[string]any{"event": "user.login", "code": "T1000I", "uid": "bad-utf8", "time": now.Add(-time.Minute).Format(time.RFC3339Nano),
			"user": "al\xffice", "success": true}),
		mk(map[string]any{"event": "teleportbeat.unheard.of", "code": "X9999I", "uid": "bad-type", "time": now.Add(-time.Minute).Format(time.RFC3339Nano),
			"gizmo": map[string]any{"colour": "blue", "count": 3}}),
		mk(map[string]any{"event": "user.login", "code": "T1000I", "uid": "bad-future", "time": now.Add(10 * time.Second).Format(time.RFC3339Nano),
			"user": "bob", "success": true}),
		mk(map[string]any{"event": "user.login", "code": "T1000I", "uid": "bad-shape", "time": now.Add(-time.Minute).Format(time.RFC3339Nano),
			"user": map[string]any{"name": "carol"}, "login": map[string]any{"os": "root"}, "success": true}),
	}
	e.tp.Store.Add(odd...)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out))
	all := append(normal, odd...)
	waitFor(t, 2*time.Minute, "every event, the future one included", func() bool { return es.Count() >= len(expectedIDs(all)) })
	e.settle()
	p.stop()
	checkDocs(t, es, all)

	get := func(id string, path ...string) any {
		d, ok := es.Doc(id)
		require.True(t, ok, id)
		var cur any = d.Source
		for _, k := range path {
			cur = cur.(map[string]any)[k]
		}
		return cur
	}
	require.Equal(t, huge, get("bad-huge", "teleport", "audit", "db_query"), "the huge event is stored whole")
	require.Equal(t, "al\uFFFDice", get("bad-utf8", "user", "name"))
	require.Equal(t, "teleportbeat.unheard.of", get("bad-type", "event", "action"))
	require.Equal(t, "event", get("bad-type", "event", "kind"))
	require.Equal(t, "blue", get("bad-type", "teleport", "unmapped", "gizmo", "colour"), "a field the template does not know is kept in teleport.unmapped")
	ts, err := time.Parse(time.RFC3339Nano, get("bad-future", "@timestamp").(string))
	require.NoError(t, err)
	require.Equal(t, now.Add(10*time.Second).Truncate(time.Millisecond), ts)
	// A shape Teleport itself uses for a field in some events (user is a
	// string in most, an object in a few) goes to the field's alternate;
	// any other misfit moves, unchanged, to teleport.misfits (tagged), so
	// that Elasticsearch takes the document.
	require.Equal(t, map[string]any{"name": "carol"}, get("bad-shape", "teleport", "audit", "user_object"))
	require.Equal(t, map[string]any{"os": "root"}, get("bad-shape", "teleport", "misfits", "login"), "kept, unchanged")
	require.Contains(t, get("bad-shape", "tags"), "teleport_field_misfit")
}
