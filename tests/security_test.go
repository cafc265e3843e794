package tests

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/certs"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestTLSIsVerifiedByDefault: towards Teleport, Elasticsearch and Logstash
// the server's certificate is checked against the configured CAs; for
// Elasticsearch and Logstash, turning that off takes an explicit
// ssl.verification_mode: none and is logged as a warning. Towards Teleport
// it cannot be turned off at all.
func TestTLSIsVerifiedByDefault(t *testing.T) {
	t.Parallel()
	t.Run("teleport", func(t *testing.T) {
		e := newEnv(t)
		other, err := teleporttest.New(teleporttest.Config{ClusterName: "impostor.example.com"})
		require.NoError(t, err)
		t.Cleanup(other.Stop)
		// The identity trusts e's cluster CA, not the impostor's.
		cfg := e.config("teleportbeat.yml", "output.console.enabled: true\n")
		body, err := os.ReadFile(cfg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(cfg, []byte(strings.ReplaceAll(string(body), e.tp.Addr(), other.Addr())), 0o600))
		p := e.start(cfg)
		// One line says what failed and what to do (internal/teleport's
		// Explain).
		// Both lines are waited for: the health status (Degraded, with
		// the explanation) may be logged before the retry warning.
		p.waitLog(30*time.Second, "certificate signed by an unknown authority at "+other.Addr()+": either the identity is for another Teleport cluster")
		p.waitLog(30*time.Second, "Cannot reach Teleport; retrying")
		require.Zero(t, other.SearchCalls(), "nothing asked of a server that is not the cluster")
		p.stop()
	})

	t.Run("elasticsearch", func(t *testing.T) {
		e := newEnv(t)
		evs := e.addGenerated(100)
		es := estest.New()
		srv := httptest.NewTLSServer(es)
		t.Cleanup(srv.Close)
		out := fmt.Sprintf("output.elasticsearch:\n  hosts: [%q]\n  backoff.init: 200ms\n  backoff.max: 1s\n", srv.URL)

		p := e.start(e.config("verify.yml", out))
		p.waitLog(30*time.Second, "x509: certificate signed by unknown authority")
		require.Zero(t, es.Count())
		require.NotContains(t, p.logs.String(), "SSL/TLS verifications disabled")
		p.stop()

		p = e.start(e.config("noverify.yml", out+"  ssl.verification_mode: none\n"))
		p.waitLog(30*time.Second, "SSL/TLS verifications disabled.")
		waitFor(t, time.Minute, "the events over unverified TLS", func() bool { return es.Count() >= len(evs) })
		p.stop()
	})

	t.Run("logstash", func(t *testing.T) {
		e := newEnv(t)
		evs := e.addGenerated(100)
		serverCA, err := certs.NewCA("logstash CA", certs.Options{})
		require.NoError(t, err)
		ls := startLumber(t, serverCA)
		// The beat is told to trust another CA than the one that signed
		// Logstash's certificate.
		otherCA, err := certs.NewCA("another CA", certs.Options{})
		require.NoError(t, err)
		dir := filepath.Join(e.dir, "pki")
		caFile, _, err := otherCA.Write(dir, "other-ca")
		require.NoError(t, err)
		client, err := serverCA.Client("teleportbeat")
		require.NoError(t, err)
		certFile, keyFile, err := client.Write(dir, "client")
		require.NoError(t, err)
		out := logstashOutput(ls.addr, caFile, certFile, keyFile) + "  backoff.init: 200ms\n  backoff.max: 1s\n"

		p := e.start(e.config("verify.yml", out))
		p.waitLog(30*time.Second, "certificate signed by unknown authority")
		require.Zero(t, ls.count())
		p.stop()

		p = e.start(e.config("noverify.yml", out+"  ssl.verification_mode: none\n"))
		p.waitLog(30*time.Second, "SSL/TLS verifications disabled.")
		waitFor(t, time.Minute, "the events over unverified TLS", func() bool { return ls.count() >= len(evs) })
		p.stop()
	})
}

// TestNoSecretsInLogsOrExportedConfig runs the beat with every debug
// selector on (-d '*') and with secrets in its configuration: the Teleport
// identity's private key, an Elasticsearch API key, a Kibana password.
// None of them appears in the logs (main and event logs), in `export
// config`, or in a crash dump. The files it writes are private.
func TestNoSecretsInLogsOrExportedConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	evs := e.addGenerated(200)
	es, out := esSetup(t)
	const (
		apiKey     = "tbid:ApiK3y-Sekrit-0123456789"
		kibanaPass = "Kib4na-Sekrit-Pa55"
		lsPass     = "Ssl-Key-Pa55phrase-Sekrit"
	)
	cfg := e.config("teleportbeat.yml", out+fmt.Sprintf("  api_key: %q\nsetup.kibana.password: %q\nsetup.kibana.username: elastic\n"+
		"monitoring.elasticsearch.ssl.key_passphrase: %q\nlogging.level: debug\n", apiKey, kibanaPass, lsPass))
	// The identity file is world-readable: the beat warns about it.
	require.NoError(t, os.Chmod(e.idFile, 0o644))
	id, err := os.ReadFile(e.idFile)
	require.NoError(t, err)
	secrets := []string{apiKey, kibanaPass, lsPass, "ApiK3y-Sekrit"}
	// Every line of base64 inside the private key block.
	inKey := false
	for _, line := range strings.Split(string(id), "\n") {
		switch {
		case strings.Contains(line, "BEGIN") && strings.Contains(line, "PRIVATE KEY"):
			inKey = true
		case strings.Contains(line, "END") && strings.Contains(line, "PRIVATE KEY"):
			inKey = false
		case inKey && len(line) > 16:
			secrets = append(secrets, line)
		}
	}
	require.Greater(t, len(secrets), 6, "the identity file has a private key block")

	p := e.start(cfg, "-d", "*")
	waitFor(t, time.Minute, "the events", func() bool { return es.Count() >= len(evs) })
	e.settle()
	p.stop()
	require.Contains(t, p.logs.String(), "The file with teleportbeat's Teleport private key can be read by other users")

	exported, err := exec.Command(beatBin, "export", "config", "-c", cfg, "--path.home", e.dir).CombinedOutput()
	require.NoError(t, err, "%s", exported)
	require.Contains(t, string(exported), "api_key: '[redacted]'")

	logs := p.logs.String()
	files, _ := filepath.Glob(filepath.Join(e.dir, "logs", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		logs += string(b)
	}
	for _, s := range secrets {
		require.NotContains(t, logs, s, "a secret in the logs")
		require.NotContains(t, string(exported), s, "a secret in export config")
	}

	// A crash dump (what a panic or SIGQUIT prints: every goroutine's
	// stack, with -d '*' logging on) holds none of them either.
	q := e.start(cfg, "-d", "*")
	q.waitLog(time.Minute, "Reading the Teleport audit log")
	require.NoError(t, q.cmd.Process.Signal(syscall.SIGQUIT))
	select {
	case <-q.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no crash dump within 30s of SIGQUIT")
	}
	dump := q.logs.String()
	require.Contains(t, dump, "SIGQUIT: quit")
	require.Contains(t, dump, "goroutine ")
	require.Contains(t, dump, "github.com/teleportbeat/teleportbeat/internal/input.Run(", "the dump shows teleportbeat's own stacks")
	for _, s := range secrets {
		require.NotContains(t, dump, s, "a secret in the crash dump")
	}

	// The registry is private.
	err = filepath.Walk(filepath.Join(e.dir, "data", "registry"), func(path string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		require.Equal(t, want, info.Mode().Perm(), path)
		return nil
	})
	require.NoError(t, err)
}

// TestNoSecretInAddresses: credentials given inside addresses (an
// Elasticsearch host with user:password@, an HTTP receiver URL with a
// password and a token in its query) appear neither in the log, at debug
// level, nor in `export config`, nor does any other secret-bearing
// setting of the outputs and Kibana.
func TestNoSecretInAddresses(t *testing.T) {
	t.Parallel()
	const (
		esPass     = "EsH0st-Sekrit"
		httpPass   = "HttpUrl-Sekrit"
		queryToken = "QueryT0ken-Sekrit"
		svcToken   = "SvcT0ken-Sekrit"
		param      = "Param-Sekrit"
		access     = "AccessT0ken-Sekrit"
	)
	secrets := []string{esPass, httpPass, queryToken, svcToken, param, access}
	for _, tc := range []struct{ name, out string }{
		{"elasticsearch", "output.elasticsearch:\n  hosts: [%q]\n  parameters: {token: " + param + "}\n"},
		{"http", "output.http:\n  url: %q\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			evs := e.addGenerated(100)
			var host string
			var count func() int
			if tc.name == "elasticsearch" {
				es, _ := esSetup(t)
				srv := es.Server()
				t.Cleanup(srv.Close)
				host = strings.Replace(srv.URL, "http://", "http://elastic:"+esPass+"@", 1)
				count = es.Count
			} else {
				recv, u := newStatusReceiver(t)
				host = strings.Replace(u, "http://", "http://fluentd:"+httpPass+"@", 1) + "?token=" + queryToken
				count = recv.count
			}
			cfg := e.config("teleportbeat.yml", fmt.Sprintf(tc.out, host)+
				fmt.Sprintf("setup.kibana.service_token: %q\nx_custom.access_token: %q\n", svcToken, access))
			p := e.start(cfg, "-d", "*")
			waitFor(t, time.Minute, "the events", func() bool { return count() >= len(evs) })
			e.settle()
			p.stop()
			exported, err := exec.Command(beatBin, "export", "config", "-c", cfg, "--path.home", e.dir).CombinedOutput()
			require.NoError(t, err, "%s", exported)
			for _, s := range secrets {
				require.NotContains(t, p.logs.String(), s, "a secret in the log")
				require.NotContains(t, string(exported), s, "a secret in export config")
			}
			if tc.name == "http" {
				require.Contains(t, p.logs.String(), "backoff(http(http://[redacted]@127.0.0.1", "the address is named, without its credentials")
			}
		})
	}
}
