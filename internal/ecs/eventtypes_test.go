package ecs

import (
	"reflect"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/build/samples"

	"github.com/gravitational/teleport/api/types/events"
)

// oneOfStructs returns the names of every event struct of the pinned
// teleport/api: the members of events.OneOf.
func oneOfStructs() map[string]bool {
	out := map[string]bool{}
	var o events.OneOf
	for _, w := range o.XXX_OneofWrappers() {
		out[reflect.TypeOf(w).Elem().Field(0).Type.Elem().Name()] = true
	}
	return out
}

// ECS 8.x allowed values of event.category and event.type.
var (
	ecsCategories = map[string]bool{"api": true, "authentication": true, "configuration": true, "database": true, "driver": true, "email": true, "file": true, "host": true, "iam": true, "intrusion_detection": true, "library": true, "malware": true, "network": true, "package": true, "process": true, "registry": true, "session": true, "threat": true, "vulnerability": true, "web": true}
	ecsTypes      = map[string]bool{"access": true, "admin": true, "allowed": true, "change": true, "connection": true, "creation": true, "deletion": true, "denied": true, "end": true, "error": true, "group": true, "indicator": true, "info": true, "installation": true, "protocol": true, "start": true, "user": true}
)

// TestEveryAPIEventTypeIsCategorised enumerates the event structs of the
// pinned teleport/api and fails for any without an entry in the table.
func TestEveryAPIEventTypeIsCategorised(t *testing.T) {
	structs := oneOfStructs()
	require.Greater(t, len(structs), 190, "the pinned API has about 195 event structs")
	covered := map[string]bool{}
	names := map[string]bool{}
	for _, e := range EventTypes() {
		require.False(t, names[e.Name], "event type %s listed twice", e.Name)
		names[e.Name] = true
		require.True(t, structs[e.Struct], "event type %s names %s, which is not an event struct of the pinned API", e.Name, e.Struct)
		covered[e.Struct] = true
		require.NotEmpty(t, e.Type, e.Name)
		require.NotEmpty(t, e.Action, e.Name)
		if e.Name != "unknown" {
			require.NotEmpty(t, e.Category, e.Name)
		}
		for _, v := range e.Category {
			require.True(t, ecsCategories[v], "%s: %q is not an ECS event.category", e.Name, v)
		}
		for _, v := range e.Type {
			require.True(t, ecsTypes[v], "%s: %q is not an ECS event.type", e.Name, v)
		}
	}
	var missing []string
	for s := range structs {
		if !covered[s] {
			missing = append(missing, s)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "event structs of the pinned API without a categorisation")
}

// TestCorpusEventTypesAreKnown checks the sample events' types against the
// table: the corpus comes from Teleport's own fixtures. Three of its types
// are not in the pinned API (names of Teleport's web UI fixtures); they are
// categorised by their family.
func TestCorpusEventTypesAreKnown(t *testing.T) {
	fields, err := samples.CorpusFields()
	require.NoError(t, err)
	var unknown []string
	seen := map[string]bool{}
	for _, f := range fields {
		typ, _ := f["event"].(string)
		if _, ok := LookupEventType(typ); !ok && !seen[typ] {
			unknown = append(unknown, typ)
			seen[typ] = true
		}
	}
	sort.Strings(unknown)
	require.Equal(t, []string{"access_list.member.add", "access_list.member.delete_all_members", "device.token.spent"}, unknown)
	for _, typ := range unknown {
		g, ok := guessEventType(typ, "")
		require.True(t, ok, typ)
		require.NotEmpty(t, g.Category, typ)
	}
	g, _ := guessEventType("access_list.member.add", "")
	require.Equal(t, []string{"iam"}, g.Category)
	require.Equal(t, []string{"creation"}, g.Type)
	g, ok := guessEventType("nothing_like_it", "")
	require.True(t, ok)
	require.Equal(t, []string{"api"}, g.Category, "an event of a kind nothing names is an API call")

	// A family the pinned API does not know: its code's family decides.
	g, ok = guessEventType("quantum_db.session.entangle", "TPG99I")
	require.True(t, ok)
	require.Equal(t, []string{"database"}, g.Category)
	g, ok = guessEventType("role_template.deleted", "T9099I")
	require.True(t, ok)
	require.Equal(t, []string{"iam", "configuration"}, g.Category)
	require.Equal(t, []string{"deletion"}, g.Type)
	g, _ = guessEventType("nothing_like_it", "TZZ00I")
	require.Equal(t, []string{"api"}, g.Category, "an unknown code family falls back to the name")
}

// Event types of Teleport releases newer than the pinned API, as its audit
// event reference shows them (name, code): each gets a category.
func TestNewerTeleportTypesAreCategorised(t *testing.T) {
	for _, tc := range []struct {
		name, code string
		want       []string
	}{
		{"mcp.session.start", "TMCP001I", []string{"session", "web"}},
		{"mcp.session.request", "TMCP003E", []string{"session", "web"}},
		{"mcp.session.invalid_http_request", "TMCP006E", []string{"session", "web"}},
		{"scim.resource.create", "TSCIM001I", []string{"iam"}},
		{"scim.list", "TSCIM006I", []string{"iam"}},
		{"inference_model.create", "INF001I", []string{"configuration"}},
		{"inference_secret.delete", "INF006I", []string{"configuration"}},
		{"retrieval_model.update", "INF012I", []string{"configuration"}},
		{"classifier.create", "INF014E", []string{"configuration"}},
		{"beams.config.update", "TBEAM002I", []string{"configuration"}},
		{"cir.update", "CIR001I", []string{"configuration", "network"}},
		{"access_graph.path.changed", "TAG001I", []string{"iam"}},
		{"db.session.spanner.rpc", "TSPN001W", []string{"database"}},
		{"workload_identity_x509_revocation.create", "WID004I", []string{"iam"}},
		{"autoupdate_agent_rollout.trigger", "AUAR001I", []string{"configuration"}},
		{"vnet_config.update", "TVNET002I", []string{"configuration", "network"}},
		{"some_new_thing.session.open", "TAIC001I", []string{"session"}},
		{"frobnicator.frobnicate", "TSSP001I", []string{"api"}},
	} {
		info, known := LookupEventType(tc.name)
		if !known {
			g, ok := guessEventType(tc.name, tc.code)
			require.True(t, ok, tc.name)
			info = &g
		}
		require.Equal(t, tc.want, info.Category, "%s (%s)", tc.name, tc.code)
	}
	require.Equal(t, "TSPN", CodeFamily("TSPN001I"))
	require.Equal(t, "T50", CodeFamily("T5000I"))
	require.Equal(t, "TMCP", CodeFamily("TMCP003E"))
	require.Equal(t, "", CodeFamily("weird"))
}
