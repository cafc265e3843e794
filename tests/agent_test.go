package tests

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"gopkg.in/yaml.v2"

	"github.com/elastic/elastic-agent-client/v7/pkg/client/mock"
	"github.com/elastic/elastic-agent-client/v7/pkg/proto"

	"github.com/teleportbeat/teleportbeat/internal/agent"
	"github.com/teleportbeat/teleportbeat/internal/build/fleetpkg"
	"github.com/teleportbeat/teleportbeat/internal/build/generate"
	"github.com/teleportbeat/teleportbeat/internal/certs"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/typedevents"
)

const agentID = "agent-e2e-1"

// fakeAgent is Elastic Agent's side of the V2 control protocol:
// elastic-agent-client's mock server over mutual TLS, handing out the
// units the test sets and recording the states the beat reports.
type fakeAgent struct {
	t      *testing.T
	server *mock.StubServerV2
	info   []byte // the StartUpInfo Elastic Agent writes to a component's stdin

	mu       sync.Mutex
	units    []*proto.UnitExpected
	observed map[string]*proto.UnitObserved
	history  []string // "<unit> <STATE> <message>", in order
}

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	ca, err := certs.NewCA("elastic-agent-ca", certs.Options{})
	require.NoError(t, err)
	srvCert, err := ca.Server("localhost", "localhost", "127.0.0.1")
	require.NoError(t, err)
	cliCert, err := ca.Client("teleportbeat")
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(srvCert.CertPEM, srvCert.KeyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)

	a := &fakeAgent{t: t, observed: map[string]*proto.UnitObserved{}}
	a.server = &mock.StubServerV2{
		CheckinV2Impl: a.checkin,
		ActionImpl:    func(*proto.ActionResponse) error { return nil },
	}
	require.NoError(t, a.server.Start(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))))
	t.Cleanup(a.server.Stop)
	a.info, err = gproto.Marshal(&proto.StartUpInfo{
		Addr:       fmt.Sprintf("127.0.0.1:%d", a.server.Port),
		ServerName: "localhost",
		Token:      "component-token",
		CaCert:     ca.CertPEM,
		PeerCert:   cliCert.CertPEM,
		PeerKey:    cliCert.KeyPEM,
		Services:   []proto.ConnInfoServices{proto.ConnInfoServices_CheckinV2},
		AgentInfo:  &proto.AgentInfo{Id: agentID, Version: "9.3.0"},
	})
	require.NoError(t, err)
	return a
}

func (a *fakeAgent) checkin(obs *proto.CheckinObserved) *proto.CheckinExpected {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, u := range obs.GetUnits() {
		prev, seen := a.observed[u.GetId()]
		if !seen || prev.GetState() != u.GetState() || prev.GetMessage() != u.GetMessage() {
			a.history = append(a.history, fmt.Sprintf("%s %s %s", u.GetId(), u.GetState(), u.GetMessage()))
		}
		a.observed[u.GetId()] = u
	}
	return &proto.CheckinExpected{
		AgentInfo: &proto.AgentInfo{Id: agentID, Version: "9.3.0"},
		Units:     a.units,
	}
}

// set replaces the units Elastic Agent expects.
func (a *fakeAgent) set(units ...*proto.UnitExpected) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.units = units
}

// state returns the last reported state and message of a unit, and the
// config revision it reported them for.
func (a *fakeAgent) state(unit string) (proto.State, string, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.observed[unit]
	if !ok {
		return -1, "", 0
	}
	return u.GetState(), u.GetMessage(), u.GetConfigStateIdx()
}

// waitState waits until the unit reports state for config revision rev
// with a message containing msg.
func (a *fakeAgent) waitState(unit string, want proto.State, rev uint64, msg string) {
	a.t.Helper()
	waitFor(a.t, 90*time.Second, fmt.Sprintf("unit %s %s (revision %d) %q", unit, want, rev, msg), func() bool {
		s, m, r := a.state(unit)
		return s == want && r == rev && strings.Contains(m, msg)
	})
}

func (a *fakeAgent) historyString() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.history, "\n")
}

// start runs teleportbeat as Elastic Agent does: the component spec's
// arguments, the connection info on stdin.
func (a *fakeAgent) start(e *env) *proc {
	a.t.Helper()
	var spec struct {
		Inputs []struct {
			Command struct {
				Args []string `yaml:"args"`
			} `yaml:"command"`
		} `yaml:"inputs"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "module", "teleportbeat.spec.yml"))
	require.NoError(a.t, err)
	require.NoError(a.t, yaml.Unmarshal(b, &spec))
	return e.launch(spec.Inputs[0].Command.Args, bytes.NewReader(a.info), func() string { return "unit states:\n" + a.historyString() })
}

func outputUnit(t *testing.T, esURL string) *proto.UnitExpected {
	src, err := structpb.NewStruct(map[string]any{"type": "elasticsearch", "hosts": []any{esURL}})
	require.NoError(t, err)
	return &proto.UnitExpected{
		Id: "output-default", Type: proto.UnitType_OUTPUT, State: proto.State_HEALTHY, ConfigStateIdx: 1,
		LogLevel: proto.UnitLogLevel_INFO,
		Config:   &proto.UnitExpectedConfig{Id: "default", Type: "elasticsearch", Name: "default", Source: src},
	}
}

// inputUnit is the unit Elastic Agent sends for a Teleport integration
// policy: both data streams rendered from the Fleet package with vars.
func inputUnit(t *testing.T, pkg *fleetpkg.Package, rev uint64, namespace string, vars map[string]any, state proto.State) *proto.UnitExpected {
	t.Helper()
	cfg := &proto.UnitExpectedConfig{
		Id: "teleport-policy-1", Type: agent.InputType, Name: "teleport-1", Revision: rev,
		DataStream: &proto.DataStream{Namespace: namespace},
	}
	for _, ds := range pkg.DataStreamNames() {
		src, err := pkg.Render(ds, vars)
		require.NoError(t, err)
		s, err := structpb.NewStruct(src)
		require.NoError(t, err)
		cfg.Streams = append(cfg.Streams, &proto.Stream{
			Id: "teleport-" + ds + "-policy-1", Source: s,
			DataStream: &proto.DataStream{Dataset: pkg.Dataset(ds), Type: "logs"},
		})
	}
	return &proto.UnitExpected{
		Id: "teleport-policy-1", Type: proto.UnitType_INPUT, State: state, ConfigStateIdx: rev,
		LogLevel: proto.UnitLogLevel_INFO, Config: cfg,
	}
}

// docsIn returns the stored documents of an index, by _id.
func docsIn(es *estest.Recorder, index string) map[string]estest.Doc {
	out := map[string]estest.Doc{}
	for _, d := range es.Docs() {
		if d.Index == index {
			out[d.ID] = d
		}
	}
	return out
}

// TestElasticAgentManagesTheBeat runs teleportbeat as Elastic Agent does
// (component spec arguments, connection info on stdin, mutual TLS) against
// elastic-agent-client's V2 mock server, with units rendered from the
// Fleet package: events flow into the data streams, the unit reports
// healthy, degraded (Teleport failing) and failed (expired identity) with
// reasons, policy changes apply in the same process, and stopping the
// unit and the beat is clean.
func TestElasticAgentManagesTheBeat(t *testing.T) {
	t.Parallel()
	pkg, err := fleetpkg.Load(filepath.Join(repoRoot, "module", "teleportbeat"))
	require.NoError(t, err)
	e := newEnv(t)
	evs := e.servedEvents(1000)
	recs := e.addSessions(2, 20)
	es := estest.New()
	installFleetPackage(t, es, pkg)
	srv := es.Server()
	t.Cleanup(srv.Close)
	a := newFakeAgent(t)

	vars := map[string]any{
		"addr":          []any{e.tp.Addr()},
		"identity_file": e.idFile,
		"start_time":    "2019-01-01T00:00:00Z",
		"poll_interval": "200ms",
	}
	out := outputUnit(t, srv.URL)
	a.set(out, inputUnit(t, pkg, 1, "default", vars, proto.State_HEALTHY))
	p := a.start(e)

	// 1. Events flow into logs-teleportbeat.audit-default and
	// logs-teleportbeat.session-default, with the agent's fields.
	a.waitState("teleport-policy-1", proto.State_HEALTHY, 1, "Healthy")
	wantAudit := len(expectedIDs(evs)) + len(recs) // and the upload events
	wantSessions := len(sessionDocs(recs))
	waitFor(t, 2*time.Minute, "every audit event and recording in the data streams", func() bool {
		return len(docsIn(es, "logs-teleportbeat.audit-default")) >= wantAudit && len(docsIn(es, "logs-teleportbeat.session-default")) >= wantSessions
	})
	stored := docsIn(es, "logs-teleportbeat.audit-default")
	for id := range expectedIDs(evs) {
		d, ok := stored[id]
		require.True(t, ok, "event %s stored in logs-teleportbeat.audit-default", id)
		require.Equal(t, map[string]any{"type": "logs", "dataset": "teleportbeat.audit", "namespace": "default"}, d.Source["data_stream"], id)
		require.Equal(t, agentID, d.Source["agent"].(map[string]any)["id"], id)
		require.Equal(t, "teleportbeat.audit", d.Source["event"].(map[string]any)["dataset"], id)
	}
	for _, d := range docsIn(es, "logs-teleportbeat.session-default") {
		require.Equal(t, "teleportbeat.session", d.Source["data_stream"].(map[string]any)["dataset"])
	}
	s, _, _ := a.state("output-default")
	require.Equal(t, proto.State_HEALTHY, s, "output unit")

	// 2. Teleport failing: degraded, with the error; healthy again after.
	e.tp.Faults.FailNext(1 << 20)
	a.waitState("teleport-policy-1", proto.State_DEGRADED, 1, "Teleport audit search of cluster")
	e.tp.Faults.Reset()
	a.waitState("teleport-policy-1", proto.State_HEALTHY, 1, "Healthy")

	// 3. A policy change (new namespace, only user.login events): applied
	// by the same process, resuming from the registry.
	pid := p.cmd.Process.Pid
	vars2 := map[string]any{}
	for k, v := range vars {
		vars2[k] = v
	}
	vars2["event_types"] = []any{"user.login"}
	a.set(out, inputUnit(t, pkg, 2, "prod", vars2, proto.State_HEALTHY))
	a.waitState("teleport-policy-1", proto.State_HEALTHY, 2, "Healthy")
	later := e.gen.Events(400, time.Now().Add(-5*time.Second), 10*time.Millisecond)
	e.tp.Store.Add(later...)
	var logins []*teleporttest.Event
	for _, ev := range later {
		if ev.Type == "user.login" {
			logins = append(logins, ev)
		}
	}
	require.NotEmpty(t, logins)
	waitFor(t, 2*time.Minute, "the new logins in logs-teleportbeat.audit-prod", func() bool {
		return len(docsIn(es, "logs-teleportbeat.audit-prod")) >= len(logins)
	})
	e.settle()
	prod := docsIn(es, "logs-teleportbeat.audit-prod")
	require.Len(t, prod, len(logins), "only user.login, and nothing read again")
	for id := range expectedIDs(logins) {
		require.Contains(t, prod, id)
	}
	require.Len(t, docsIn(es, "logs-teleportbeat.audit-default"), wantAudit, "the first policy's events were not sent again")
	require.Equal(t, pid, p.cmd.Process.Pid)
	require.False(t, p.exited(), "the policy change did not restart teleportbeat")

	// 4. An expired identity: failed, with the reason; a renewed file
	// brings it back without another policy change.
	expired, err := e.tp.NewIdentity(-time.Minute)
	require.NoError(t, err)
	expiredFile := filepath.Join(e.dir, "identity-expired")
	require.NoError(t, expired.WriteIdentityFile(expiredFile))
	vars3 := map[string]any{}
	for k, v := range vars2 {
		vars3[k] = v
	}
	vars3["identity_file"] = expiredFile
	a.set(out, inputUnit(t, pkg, 3, "prod", vars3, proto.State_HEALTHY))
	a.waitState("teleport-policy-1", proto.State_FAILED, 3, "Teleport credentials expired at "+expired.NotAfter.UTC().Format(time.RFC3339))
	renewed, err := e.tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	require.NoError(t, renewed.WriteIdentityFile(expiredFile))
	a.waitState("teleport-policy-1", proto.State_HEALTHY, 3, "Healthy")

	// 5. Stop the unit, then the beat (as Elastic Agent does, SIGTERM).
	a.set(out, inputUnit(t, pkg, 3, "prod", vars3, proto.State_STOPPED))
	a.waitState("teleport-policy-1", proto.State_STOPPED, 3, "")
	p.waitLog(30*time.Second, "Audit position saved")
	require.False(t, p.exited())
	p.stop()
	require.Equal(t, 1, strings.Count(p.logs.String(), "Managed by Elastic Agent"), "one process throughout")

	t.Logf("RESULT elastic-agent: %d audit + %d session documents in the data streams; states reported:\n%s",
		len(docsIn(es, "logs-teleportbeat.audit-default"))+len(prod), len(docsIn(es, "logs-teleportbeat.session-default")), a.historyString())
}

// installFleetPackage puts what Fleet installs for the package into the
// recording Elasticsearch: its index and component templates and its
// ingest pipelines, built as Fleet builds them (fleetpkg).
func installFleetPackage(t *testing.T, es *estest.Recorder, pkg *fleetpkg.Package) {
	t.Helper()
	fieldsYML, err := os.ReadFile(filepath.Join(repoRoot, "fields.yml"))
	require.NoError(t, err)
	assets, err := pkg.ElasticsearchAssets(func(b []byte) ([]byte, error) { return generate.ResolveECS(b, fieldsYML) })
	require.NoError(t, err)
	put := func(what string, bodies map[string]map[string]any, fn func(string, []byte) error) {
		for name, body := range bodies {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			require.NoError(t, fn(name, b), "%s %s", what, name)
		}
	}
	put("pipeline", assets.Pipelines, es.PutPipeline)
	put("component template", assets.ComponentTemplates, es.PutComponentTemplate)
	put("index template", assets.IndexTemplates, es.PutIndexTemplate)
}

// asPolicy is unit as the unit of another integration policy (n).
func asPolicy(u *proto.UnitExpected, n int) *proto.UnitExpected {
	suffix := fmt.Sprintf("policy-%d", n)
	u.Id = "teleport-" + suffix
	u.Config.Id, u.Config.Name = u.Id, fmt.Sprintf("teleport-%d", n)
	for _, s := range u.Config.Streams {
		s.Id = strings.Replace(s.Id, "policy-1", suffix, 1)
	}
	return u
}

// TestElasticAgentRunsATeleportIntegrationPerCluster: two Teleport
// integration policies on one agent (two clusters, the second an older
// Teleport): both units run in one teleportbeat, each with its own status,
// every event of each stored once with its cluster; one cluster failing
// degrades only its unit.
func TestElasticAgentRunsATeleportIntegrationPerCluster(t *testing.T) {
	t.Parallel()
	pkg, err := fleetpkg.Load(filepath.Join(repoRoot, "module", "teleportbeat"))
	require.NoError(t, err)
	e := newEnvWith(t, teleporttest.Config{ClusterName: "root.example.com"})
	e.gen.ClusterName = "root.example.com"
	root := e.addGenerated(600)
	leaf := newLeaf(t, e.dir, teleporttest.Config{ClusterName: "leaf-eu", Version: "13.1.3", Typed: typedevents.OneOf})
	leafEvs := leaf.gen.Events(400, time.Now().Add(-time.Hour), 100*time.Millisecond)
	leaf.tp.Store.Add(leafEvs...)
	es := estest.New()
	installFleetPackage(t, es, pkg)
	srv := es.Server()
	t.Cleanup(srv.Close)
	a := newFakeAgent(t)
	vars := func(addr, idFile string) map[string]any {
		return map[string]any{"addr": []any{addr}, "identity_file": idFile, "start_time": "2019-01-01T00:00:00Z", "poll_interval": "200ms"}
	}
	out := outputUnit(t, srv.URL)
	a.set(out,
		inputUnit(t, pkg, 1, "default", vars(e.tp.Addr(), e.idFile), proto.State_HEALTHY),
		asPolicy(inputUnit(t, pkg, 1, "default", vars(leaf.tp.Addr(), leaf.idFile), proto.State_HEALTHY), 2))
	p := a.start(e)
	a.waitState("teleport-policy-1", proto.State_HEALTHY, 1, "Healthy")
	a.waitState("teleport-policy-2", proto.State_HEALTHY, 1, "Healthy")
	want := map[string]string{}
	for _, ev := range root {
		want[ev.ID] = "root.example.com"
	}
	for _, ev := range leafEvs {
		want[ev.ID] = "leaf-eu"
	}
	waitFor(t, 2*time.Minute, "both clusters' events", func() bool {
		return len(docsIn(es, "logs-teleportbeat.audit-default")) >= len(want)
	})

	// The leaf fails: its unit is degraded, the root's stays healthy.
	leaf.tp.Faults.FailNext(1 << 20)
	a.waitState("teleport-policy-2", proto.State_DEGRADED, 1, "Teleport audit search of cluster")
	s, _, _ := a.state("teleport-policy-1")
	require.Equal(t, proto.State_HEALTHY, s, "the other cluster's unit")
	leaf.tp.Faults.Reset()
	a.waitState("teleport-policy-2", proto.State_HEALTHY, 1, "Healthy")

	stored := docsIn(es, "logs-teleportbeat.audit-default")
	require.Len(t, stored, len(want), "every event once")
	for id, cluster := range want {
		d, ok := stored[id]
		require.True(t, ok, id)
		require.Equal(t, cluster, d.Source["teleport"].(map[string]any)["cluster"], id)
	}
	p.stop()
}
