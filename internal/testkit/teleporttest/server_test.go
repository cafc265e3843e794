package teleporttest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gravitational/trace"
	"github.com/stretchr/testify/require"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/types"
)

// newClient connects the real teleport/api client to the double.
func newClient(t *testing.T, srv *Server, creds client.Credentials) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clt, err := client.New(ctx, client.Config{
		Addrs:       []string{srv.Addr()},
		Credentials: []client.Credentials{creds},
		DialTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { clt.Close() })
	return clt
}

func startServer(t *testing.T) *Server {
	t.Helper()
	srv, err := New(Config{})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	return srv
}

func TestClientConnectsWithIdentityFileAndKeyPair(t *testing.T) {
	srv := startServer(t)
	id, err := srv.NewIdentity(time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()

	idPath := filepath.Join(dir, "identity")
	require.NoError(t, id.WriteIdentityFile(idPath))
	dyn, err := client.NewDynamicIdentityFileCreds(idPath)
	require.NoError(t, err, "teleport/api must accept the double's identity file")
	pong, err := newClient(t, srv, dyn).Ping(context.Background())
	require.NoError(t, err)
	require.Equal(t, "teleport.example.com", pong.ClusterName)
	require.NotEmpty(t, pong.ServerVersion)

	kp, err := id.WriteKeyPair(filepath.Join(dir, "tls"))
	require.NoError(t, err)
	pong, err = newClient(t, srv, client.LoadKeyPair(kp.Cert, kp.Key, kp.CA)).Ping(context.Background())
	require.NoError(t, err)
	require.Equal(t, "teleport.example.com", pong.ClusterName)
}

func TestForeignCertificateIsRefused(t *testing.T) {
	srv := startServer(t)
	other, err := NewPKI("evil.example.com")
	require.NoError(t, err)
	id, err := other.IssueIdentity("teleportbeat", []string{"teleportbeat"}, time.Hour)
	require.NoError(t, err)
	// Trust the real server's CA but present a certificate it did not sign.
	id.CAPEM = srv.PKI.CAPEM()
	kp, err := id.WriteKeyPair(filepath.Join(t.TempDir(), "tls"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clt, err := client.New(ctx, client.Config{
		Addrs:       []string{srv.Addr()},
		Credentials: []client.Credentials{client.LoadKeyPair(kp.Cert, kp.Key, kp.CA)},
		DialTimeout: 2 * time.Second,
	})
	if err == nil {
		_, err = clt.Ping(ctx)
		clt.Close()
	}
	require.Error(t, err)
}

func TestRevokedAndExpiredIdentitiesAreDenied(t *testing.T) {
	srv := startServer(t)
	clt, id := keyPairClient(t, srv)
	_, err := clt.Ping(context.Background())
	require.NoError(t, err)
	require.NoError(t, srv.Revoke(id))
	_, err = clt.Ping(context.Background())
	require.True(t, trace.IsAccessDenied(err), "got %v", err)
}

func TestSearchPagesLikeTeleport(t *testing.T) {
	srv := startServer(t)
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	srv.Store.Add(NewGenerator(1).Events(1234, start, time.Second)...)
	clt, _ := keyPairClient(t, srv)
	ctx := context.Background()

	var (
		got   []string
		key   string
		pages int
	)
	for {
		items, next, err := clt.SearchUnstructuredEvents(ctx, start, start.Add(2*time.Hour), "default", nil, 100, types.EventOrderAscending, key)
		require.NoError(t, err)
		pages++
		for _, it := range items {
			got = append(got, it.Id)
		}
		if next == "" {
			break
		}
		key = next
	}
	require.Len(t, got, 1234)
	require.Equal(t, 13, pages, "12 full pages and a last partial one")
	all := srv.Store.All()
	for i, e := range all {
		require.Equal(t, e.ID, got[i], "events in time order (index %d)", i)
	}

	// A full last page still carries a key; following it yields nothing.
	items, next, err := clt.SearchUnstructuredEvents(ctx, start, all[99].Time, "default", nil, 100, types.EventOrderAscending, "")
	require.NoError(t, err)
	require.Len(t, items, 100)
	require.NotEmpty(t, next)
	items, next, err = clt.SearchUnstructuredEvents(ctx, start, all[99].Time, "default", nil, 100, types.EventOrderAscending, next)
	require.NoError(t, err)
	require.Empty(t, items)
	require.Empty(t, next)

	// Type filter and descending order.
	items, _, err = clt.SearchUnstructuredEvents(ctx, start, start.Add(2*time.Hour), "default", []string{"user.login"}, 10, types.EventOrderDescending, "")
	require.NoError(t, err)
	require.Len(t, items, 10)
	for i, it := range items {
		require.Equal(t, "user.login", it.Type)
		if i > 0 {
			require.False(t, it.Time.AsTime().After(items[i-1].Time.AsTime()))
		}
	}

	// Teleport's limits.
	_, _, err = clt.SearchUnstructuredEvents(ctx, start, start.Add(time.Hour), "default", nil, MaxPageLimit+1, types.EventOrderAscending, "")
	require.True(t, trace.IsBadParameter(err), "got %v", err)
	_, _, err = clt.SearchUnstructuredEvents(ctx, start.Add(time.Hour), start, "default", nil, 10, types.EventOrderAscending, "")
	require.True(t, trace.IsBadParameter(err), "got %v", err)
	_, _, err = clt.SearchUnstructuredEvents(ctx, start, start.Add(time.Hour), "default", nil, 10, types.EventOrderAscending, "not-a-key")
	require.True(t, trace.IsBadParameter(err), "got %v", err)
}

func TestSearchCutsPagesAtOneMebibyte(t *testing.T) {
	store := &Store{}
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = 'x'
	}
	for i := 0; i < 30; i++ {
		e, err := NewEvent(map[string]any{"event": "exec", "uid": fmt.Sprintf("big-%d", i), "time": start.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "command": string(big)})
		require.NoError(t, err)
		store.Add(e)
	}
	page, key, err := store.Search(SearchRequest{From: start, To: start.Add(time.Hour), Limit: 500})
	require.NoError(t, err)
	require.Less(t, len(page), 30)
	require.NotEmpty(t, key, "a page cut by size carries a key")
	total := len(page)
	for key != "" {
		page, key, err = store.Search(SearchRequest{From: start, To: start.Add(time.Hour), Limit: 500, StartKey: key})
		require.NoError(t, err)
		total += len(page)
	}
	require.Equal(t, 30, total)
}

func TestLateEventsAreInsertedAtTheirTime(t *testing.T) {
	store := &Store{}
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	g := NewGenerator(2)
	store.Add(g.Events(10, start, time.Second)...)
	late := g.Events(1, start.Add(4500*time.Millisecond), 0)
	store.Add(late...)
	all := store.All()
	require.Equal(t, late[0].ID, all[5].ID)
}

func TestFaults(t *testing.T) {
	srv := startServer(t)
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	srv.Store.Add(NewGenerator(1).Events(10, start, time.Second)...)
	clt, _ := keyPairClient(t, srv)
	ctx := context.Background()
	search := func() error {
		_, _, err := clt.SearchUnstructuredEvents(ctx, start, start.Add(time.Hour), "default", nil, 100, types.EventOrderAscending, "")
		return err
	}

	srv.Faults.FailNext(2)
	require.Error(t, search())
	require.Error(t, search())
	require.NoError(t, search())

	srv.Faults.CutEvery(1)
	require.Error(t, search(), "the connection is cut mid-response")
	srv.Faults.Reset()
	require.Eventually(t, func() bool { return search() == nil }, 10*time.Second, 50*time.Millisecond, "the client reconnects")

	srv.Stop()
	require.Error(t, search())
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return search() == nil }, 20*time.Second, 100*time.Millisecond, "the client reconnects after an outage")

	srv.DenyRead("event", true)
	require.True(t, trace.IsAccessDenied(search()))
}

func TestSessionStreams(t *testing.T) {
	srv := startServer(t)
	g := NewGenerator(9)
	sid, rec, up := g.Session(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), 40)
	require.Equal(t, "session.upload", up.Type)
	srv.AddSession(sid, rec)
	clt, _ := keyPairClient(t, srv)
	ctx := context.Background()

	collect := func(sid string, from int64) ([]int64, error) {
		ch, errs := clt.StreamUnstructuredSessionEvents(ctx, sid, from)
		var got []int64
		for {
			select {
			case e, ok := <-ch:
				if !ok {
					return got, nil
				}
				got = append(got, e.Index)
			case err := <-errs:
				return got, err
			}
		}
	}
	got, err := collect(sid, 0)
	require.NoError(t, err)
	require.Len(t, got, 40)
	got, err = collect(sid, 25)
	require.NoError(t, err)
	require.Equal(t, int64(25), got[0], "the start index is inclusive, as in Teleport")
	require.Len(t, got, 15)

	_, err = collect("no-such-session", 0)
	require.True(t, trace.IsNotFound(err), "got %v", err)

	srv.Faults.CutSessionsAfter(10)
	got, err = collect(sid, 0)
	require.Error(t, err)
	require.Len(t, got, 10)
}

// Generated session.upload events announce recordings: RecordUploads
// stores one for each, ending before its upload, and only once.
func TestRecordUploadsGivesEveryUploadItsRecording(t *testing.T) {
	srv, err := New(Config{})
	require.NoError(t, err)
	defer srv.Stop()
	g := NewGenerator(7)
	srv.Store.Add(g.Events(3000, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Second)...)

	uploads := map[string]time.Time{}
	for _, e := range srv.Store.All() {
		if e.Type == "session.upload" {
			uploads[e.pb.GetUnstructured().GetFields()["sid"].GetStringValue()] = e.Time
		}
	}
	require.NotEmpty(t, uploads)
	require.Equal(t, len(uploads), srv.RecordUploads(g, 25))
	for sid, up := range uploads {
		rec := srv.sessions[sid]
		require.Len(t, rec, 25, "session %s", sid)
		require.True(t, rec[len(rec)-1].Time.Before(up), "session %s is recorded before its upload", sid)
	}
	require.Zero(t, srv.RecordUploads(g, 25), "recordings already stored are kept")
}

// keyPairClient is a client of srv with a new identity (an hour long) as a
// TLS key pair, and that identity.
func keyPairClient(t *testing.T, srv *Server) (*client.Client, *Identity) {
	t.Helper()
	id, err := srv.NewIdentity(time.Hour)
	require.NoError(t, err)
	kp, err := id.WriteKeyPair(filepath.Join(t.TempDir(), "tls"))
	require.NoError(t, err)
	return newClient(t, srv, client.LoadKeyPair(kp.Cert, kp.Key, kp.CA)), id
}
