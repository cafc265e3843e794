package tests

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/testkit/fieldsyml"
	"github.com/teleportbeat/teleportbeat/internal/testkit/kql"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestWhoDidWhat is the identity model end to end: the double serves one
// event of every identity pattern (teleporttest.IdentityPatterns: local
// and SSO users, tctl auth sign by an admin and by the Auth host, Machine
// ID bots, access requests and their reviewers, host and system actions,
// database, Kubernetes, desktop and app access, moderators, locks), the
// beat ships them into the recording Elasticsearch, and the analyst's
// query `user.name: "<who acted>"`, evaluated by Kibana's KQL semantics
// over the stored documents, finds each pattern's event under its actor
// and under nobody else.
func TestWhoDidWhat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	patterns, err := teleporttest.IdentityPatterns()
	require.NoError(t, err)
	start := e.tp.Now().Add(-time.Hour)
	var served []*teleporttest.Event
	byUID := map[string]teleporttest.IdentityPattern{}
	for i, p := range patterns {
		fields := p.Event
		fields["uid"] = fmt.Sprintf("identity-%02d", i)
		fields["time"] = start.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)
		ev, err := teleporttest.NewEvent(fields)
		require.NoError(t, err, p.Pattern)
		served = append(served, ev)
		byUID[event.IDOf(ev.Proto())] = p
	}
	e.tp.Store.Add(served...)
	es, out := esSetup(t)
	p := e.start(e.config("teleportbeat.yml", out))
	waitFor(t, time.Minute, "every pattern's event in Elasticsearch", func() bool { return es.Count() >= len(served) })
	e.settle()
	p.stop()
	checkDocs(t, es, served)

	types, err := fieldsyml.Types(filepath.Join(repoRoot, "fields.yml"))
	require.NoError(t, err)
	docs := es.Docs()
	var actors []string
	for _, pt := range patterns {
		if pt.UserName != "" && !slices.Contains(actors, pt.UserName) {
			actors = append(actors, pt.UserName)
		}
	}
	for _, actor := range actors {
		q, err := kql.Parse(fmt.Sprintf("user.name: %q", actor), kql.Types(types))
		require.NoError(t, err)
		var found, want []string
		for _, d := range docs {
			if q.Match(d.Source) {
				found = append(found, byUID[d.ID].Pattern)
			}
		}
		for _, pt := range patterns {
			if pt.UserName == actor {
				want = append(want, pt.Pattern)
			}
		}
		slices.Sort(found)
		slices.Sort(want)
		require.Equal(t, want, found, "user.name: %q finds what %s did, and nothing else", actor, actor)
	}
	// Where Teleport does not know who acted (a failed app session
	// authentication, user "unknown"), no document claims anyone.
	unknown, err := kql.Parse("user.name: *", kql.Types(types))
	require.NoError(t, err)
	for _, d := range docs {
		if byUID[d.ID].UserName == "" {
			require.False(t, unknown.Match(d.Source), "%s has no actor", byUID[d.ID].Pattern)
		}
	}
	t.Logf("RESULT who-did-what: %d identity patterns served, %d stored, %d actors each found by user.name alone", len(served), len(docs), len(actors))
}
