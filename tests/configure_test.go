package tests

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	lumber "github.com/elastic/go-lumber/server/v2"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestConfigureWritesAWorkingSetup runs `teleportbeat configure`, then the
// beat with the configuration it wrote, against a beats-protocol server
// using the certificates it wrote, and checks the lock permission it grants
// by locking a user after failed logins.
func TestConfigureWritesAWorkingSetup(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "conf")
	configure := func(extra ...string) (string, error) {
		args := append([]string{"configure", dir, e.tp.Addr(), "--lock", "--key-type", "ecdsa"}, extra...)
		out, err := exec.Command(beatBin, args...).CombinedOutput()
		return string(out), err
	}
	out, err := configure()
	require.NoError(t, err, out)

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	for name, mode := range map[string]os.FileMode{
		"ca.key": 0o600, "logstash.key": 0o600, "teleportbeat.key": 0o600, "teleportbeat.yml": 0o600,
		"ca.crt": 0o644, "logstash.crt": 0o644, "teleportbeat.crt": 0o644, "logstash-teleportbeat.conf": 0o644,
		"teleportbeat-role.yaml": 0o644, "teleportbeat-user.yaml": 0o644, "tctl.sh": 0o700,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		require.Equal(t, mode, fi.Mode().Perm(), name)
	}
	role, err := os.ReadFile(filepath.Join(dir, "teleportbeat-role.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(role), "resources: ['event', 'session']")
	require.Contains(t, string(role), "resources: ['lock']")
	key, err := os.ReadFile(filepath.Join(dir, "logstash.key"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(key), "-----BEGIN PRIVATE KEY-----"), "PKCS#8, as Logstash wants")
	tctl, err := os.ReadFile(filepath.Join(dir, "tctl.sh"))
	require.NoError(t, err)
	require.Contains(t, string(tctl), "tctl auth sign --user=teleportbeat --format=file --out=identity")

	// No overwrite without --force.
	out, err = configure()
	require.Error(t, err)
	require.Contains(t, out, "not overwriting them (use --force to replace them)")
	out, err = configure("--force")
	require.NoError(t, err, out)

	// tctl.sh would write the identity; the double issues it.
	id, err := e.tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	require.NoError(t, id.WriteIdentityFile(filepath.Join(dir, "identity")))
	cfg := filepath.Join(dir, "teleportbeat.yml")
	// The starter config says where the first run starts as the
	// reference config and README do (max_delay before the first start).
	written, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.Contains(t, string(written), "default: late_events.max_delay, 15\n  # minutes, before the first start")
	require.NotContains(t, string(written), "default: now")
	out2, err := exec.Command(beatBin, "test", "config", "-c", cfg, "--path.home", e.dir).CombinedOutput()
	require.NoError(t, err, "%s", out2)

	// Logstash's side, from the written certificates.
	received := startLumberFromFiles(t, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "logstash.crt"), filepath.Join(dir, "logstash.key"), "127.0.0.1:0")
	evs := e.addGenerated(300)
	fails := failedLogins(t, e.gen, "mallory", 3)
	e.tp.Store.Add(fails...)

	// The configured output points at port 5044; point it at the test
	// server, and read from the start of the served events.
	p := e.start(cfg, "-E", "output.logstash.hosts=[\""+received.addr+"\"]",
		"-E", "teleportbeat.audit.start_time=2019-01-01T00:00:00Z", "-E", "teleportbeat.audit.safety_margin=1s", "-E", "teleportbeat.audit.poll_interval=200ms")
	waitFor(t, 2*time.Minute, "every event at Logstash", func() bool { return received.count() >= len(evs)+len(fails) })
	waitFor(t, 30*time.Second, "the lock", func() bool { return len(e.tp.Locks()) == 1 })
	p.waitLog(10*time.Second, "Locked a Teleport user after repeated failed logins")
	p.stop()
	require.Equal(t, "mallory", e.tp.Locks()[0].Spec.Target.User)
}

// failedLogins returns n failed logins of user in the last seconds.
func failedLogins(t *testing.T, g *teleporttest.Generator, user string, n int) []*teleporttest.Event {
	t.Helper()
	var out []*teleporttest.Event
	for i := 0; i < n; i++ {
		f := g.Event(time.Now().Add(-10*time.Second + time.Duration(i)*time.Second))
		ev, err := teleporttest.NewEvent(map[string]any{
			"event": "user.login", "code": "T1000W", "success": false, "user": user, "method": "local",
			"error": "invalid credentials", "uid": f["uid"], "time": f["time"],
		})
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

type fileLumber struct {
	addr string
	mu   sync.Mutex
	n    int
}

func (l *fileLumber) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// startLumberFromFiles runs a beats-protocol server with certificates from
// PEM files, requiring client certificates signed by the CA file.
func startLumberFromFiles(t *testing.T, caFile, certFile, keyFile, addr string) *fileLumber {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv, err := lumber.NewWithListener(tls.NewListener(l, &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12,
	}))
	require.NoError(t, err)
	fl := &fileLumber{addr: l.Addr().String()}
	go func() {
		for b := range srv.ReceiveChan() {
			fl.mu.Lock()
			fl.n += len(b.Events)
			fl.mu.Unlock()
			b.ACK()
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return fl
}

// TestConfigureRoleFitsTheClusterVersion: the role `configure` writes is
// one the cluster's version takes (Teleport 13 refuses v7), with
// --teleport-version and without it; the output says which.
func TestConfigureRoleFitsTheClusterVersion(t *testing.T) {
	for _, version := range []string{"13.1.3", "16.4.6", "18.0.0-dev"} {
		tp, err := teleporttest.New(teleporttest.Config{Version: version})
		require.NoError(t, err)
		t.Cleanup(tp.Stop)
		for _, flag := range [][]string{nil, {"--teleport-version", version}} {
			dir := filepath.Join(t.TempDir(), "conf")
			out, err := exec.Command(beatBin, append([]string{"configure", dir, tp.Addr()}, flag...)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			role, err := os.ReadFile(filepath.Join(dir, "teleportbeat-role.yaml"))
			require.NoError(t, err)
			var v string
			for _, line := range strings.Split(string(role), "\n") {
				if rest, ok := strings.CutPrefix(line, "version: "); ok {
					v = strings.TrimSpace(rest)
				}
			}
			require.NoError(t, tp.CheckRole(v), "Teleport %s, configure %v: role %s", version, flag, v)
			require.Contains(t, string(out), "The role is version "+v)
		}
	}
	// The newest role version for a version that takes it.
	dir := filepath.Join(t.TempDir(), "conf")
	out, err := exec.Command(beatBin, "configure", dir, "--teleport-version", "16").CombinedOutput()
	require.NoError(t, err, "%s", out)
	role, err := os.ReadFile(filepath.Join(dir, "teleportbeat-role.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(role), "version: v7")
	out, err = exec.Command(beatBin, "configure", filepath.Join(t.TempDir(), "c"), "--teleport-version", "9").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "older than teleportbeat supports")
}

// TestConfigureWritesForEveryCluster: with several addresses, configure
// writes a tctl script and an identity per cluster and a teleportbeat.yml
// that reads them all, which runs as written once the identities are
// there: every event of both clusters stored.
func TestConfigureWritesForEveryCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leaf := newLeaf(t, t.TempDir(), teleporttest.Config{ClusterName: "leaf-eu"})
	dir := filepath.Join(e.dir, "conf")
	rootHost, _, err := net.SplitHostPort(e.tp.Addr())
	require.NoError(t, err)
	// Two doubles on one host: the second by name, so that each cluster
	// has its own script and identity.
	leafAddr := strings.Replace(leaf.tp.Addr(), "127.0.0.1", "localhost", 1)
	out, err := exec.Command(beatBin, "configure", dir, e.tp.Addr(), leafAddr).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "tctl-"+rootHost+".sh")
	require.Contains(t, string(out), "tctl-localhost.sh")
	require.Contains(t, string(out), "tctl commands to create the role and user and sign an identity in "+leafAddr)
	script, err := os.ReadFile(filepath.Join(dir, "tctl-localhost.sh"))
	require.NoError(t, err)
	require.Contains(t, string(script), "--out=localhost.identity")
	require.NoFileExists(t, filepath.Join(dir, "tctl.sh"))

	// The scripts would sign the identities; the doubles issue them.
	copyFile(t, e.idFile, filepath.Join(dir, rootHost+".identity"), 0o600)
	copyFile(t, leaf.idFile, filepath.Join(dir, "localhost.identity"), 0o600)
	cfg := filepath.Join(dir, "teleportbeat.yml")
	written, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.Contains(t, string(written), "teleportbeat.clusters:")
	out, err = exec.Command(beatBin, "test", "config", "-c", cfg, "--path.home", e.dir).CombinedOutput()
	require.NoError(t, err, "%s", out)

	received := startLumberFromFiles(t, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "logstash.crt"), filepath.Join(dir, "logstash.key"), "127.0.0.1:0")
	evs := e.addGenerated(200)
	leafEvs := leaf.gen.Events(150, time.Now().Add(-time.Hour), time.Second)
	leaf.tp.Store.Add(leafEvs...)
	p := e.start(cfg, "-E", "output.logstash.hosts=[\""+received.addr+"\"]",
		"-E", "teleportbeat.audit.start_time=2019-01-01T00:00:00Z", "-E", "teleportbeat.audit.safety_margin=1s", "-E", "teleportbeat.audit.poll_interval=200ms")
	waitFor(t, 2*time.Minute, "both clusters' events at Logstash", func() bool { return received.count() >= len(evs)+len(leafEvs) })
	p.stop()
}
