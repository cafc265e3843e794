package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	conf "github.com/elastic/elastic-agent-libs/config"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

type creds struct {
	identity, cert, key, ca string
}

func writeCreds(t *testing.T) creds {
	t.Helper()
	pki, err := teleporttest.NewPKI("c")
	require.NoError(t, err)
	id, err := pki.IssueIdentity("teleportbeat", []string{"teleportbeat"}, time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	c := creds{identity: filepath.Join(dir, "identity")}
	require.NoError(t, id.WriteIdentityFile(c.identity))
	kp, err := id.WriteKeyPair(filepath.Join(dir, "tls"))
	require.NoError(t, err)
	c.cert, c.key, c.ca = kp.Cert, kp.Key, kp.CA
	return c
}

func load(t *testing.T, m map[string]any) (Config, error) {
	t.Helper()
	c, err := conf.NewConfigFrom(m)
	require.NoError(t, err)
	return Load(c)
}

func TestDefaultsAndAValidConfig(t *testing.T) {
	c := writeCreds(t)
	cfg, err := load(t, map[string]any{
		"teleport": map[string]any{"addr": "teleport.example.com:443", "identity_file": c.identity},
		"audit":    map[string]any{"start_time": "2025-01-31T12:00:00+01:00"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"teleport.example.com:443"}, cfg.Teleport.Addr, "a single address is a list of one")
	require.Equal(t, 500, cfg.Audit.BatchSize)
	require.Equal(t, 5*time.Second, cfg.Audit.PollInterval)
	require.Equal(t, 24*time.Hour, cfg.Audit.Window)
	require.Equal(t, time.Date(2025, 1, 31, 11, 0, 0, 0, time.UTC), cfg.Audit.Start())
	require.Equal(t, os.FileMode(0o600), cfg.Registry.FilePermissions)

	_, err = load(t, map[string]any{
		"teleport": map[string]any{"addr": []string{"a:3025", "b:443"}, "ssl": map[string]any{
			"certificate": c.cert, "key": c.key, "certificate_authorities": []string{c.ca}}},
	})
	require.NoError(t, err, "a TLS key pair is the other kind of credentials")
}

func TestValidationNamesEveryBadKey(t *testing.T) {
	c := writeCreds(t)
	other := writeCreds(t)
	cases := []struct {
		name string
		m    map[string]any
		want []string
	}{
		{"no address", map[string]any{"teleport": map[string]any{"identity_file": c.identity}},
			[]string{"teleportbeat.teleport.addr: is required"}},
		{"zero among the sweeps", map[string]any{"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity}, "audit": map[string]any{"late_events": map[string]any{"sweeps": []any{"0s", "1m"}}}},
			[]string{"teleportbeat.audit.late_events.sweeps.0: must be positive and below teleportbeat.audit.late_events.max_delay (15m0s), or [0] alone for no earlier sweep, got 0s"}},
		{"recheck within max_delay", map[string]any{"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity}, "audit": map[string]any{"late_events": map[string]any{"recheck_after": "10m"}}},
			[]string{"teleportbeat.audit.late_events.recheck_after: must be above teleportbeat.audit.late_events.max_delay (15m0s), or 0 for no recheck, got 10m0s"}},
		{"tiny memory limit", map[string]any{"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity}, "memory_limit": "1MiB"},
			[]string{"teleportbeat.memory_limit: must be 0 (no limit) or at least 32MiB, got 1048576 bytes"}},
		{"bad address", map[string]any{"teleport": map[string]any{"addr": "no-port", "identity_file": c.identity}},
			[]string{`teleportbeat.teleport.addr.0: "no-port" is not a host:port address`}},
		{"both credentials", map[string]any{"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity, "ssl": map[string]any{"certificate": c.cert}}},
			[]string{"teleportbeat.teleport.identity_file: set either an identity file or teleportbeat.teleport.ssl"}},
		{"key of another certificate", map[string]any{"teleport": map[string]any{"addr": "a:1", "ssl": map[string]any{
			"certificate": c.cert, "key": other.key, "certificate_authorities": []string{c.ca}}}},
			[]string{"teleportbeat.teleport.ssl.key: does not match teleportbeat.teleport.ssl.certificate"}},
		{"no CA", map[string]any{"teleport": map[string]any{"addr": "a:1", "ssl": map[string]any{"certificate": c.cert, "key": c.key}}},
			[]string{"teleportbeat.teleport.ssl.certificate_authorities: is required"}},
		{"CA not PEM", map[string]any{"teleport": map[string]any{"addr": "a:1", "ssl": map[string]any{
			"certificate": c.cert, "key": c.key, "certificate_authorities": []string{"/etc/hostname"}}}},
			[]string{"teleportbeat.teleport.ssl.certificate_authorities.0:"}},
		{"several bad values", map[string]any{
			"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity, "backoff": map[string]any{"init": "10s", "max": "1s"}},
			"audit":    map[string]any{"batch_size": 0, "window": "10s", "safety_margin": "-1s", "prefetch": 0, "exclude_event_types": []string{" "}},
			"registry": map[string]any{"path": "", "file_permissions": 0o200},
		}, []string{
			"teleportbeat.teleport.backoff.max: must be at least",
			"teleportbeat.audit.batch_size: must be between 1 and 10000",
			"teleportbeat.audit.window: must be at least 1m",
			"teleportbeat.audit.safety_margin: must not be negative",
			"teleportbeat.audit.prefetch: must be between 1 and 64",
			"teleportbeat.audit.exclude_event_types.0: is empty",
			"teleportbeat.registry.path: must not be empty",
			"teleportbeat.registry.file_permissions:",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.m)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestUnknownKeysAreRefused(t *testing.T) {
	c := writeCreds(t)
	_, err := load(t, map[string]any{
		"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity, "ssl": map[string]any{"verify": true}},
		"audit":    map[string]any{"batchsize": 5},
		"sesions":  map[string]any{"enabled": true},
	})
	require.EqualError(t, err, "unknown settings: teleportbeat.audit.batchsize, teleportbeat.sesions.enabled, teleportbeat.teleport.ssl.verify (see teleportbeat.reference.yml for the settings that exist)")
}

// TestTheKeyLibbeatSetsForSetupIsAccepted: `teleportbeat setup` without
// flags sets config.modules.force_enable_module_filesets in the beat's
// section; the strict check must not refuse it.
func TestTheKeyLibbeatSetsForSetupIsAccepted(t *testing.T) {
	c := writeCreds(t)
	_, err := load(t, map[string]any{
		"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity},
		"config":   map[string]any{"modules": map[string]any{"force_enable_module_filesets": true}},
	})
	require.NoError(t, err)
	_, err = load(t, map[string]any{
		"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity},
		"config":   map[string]any{"modules": map[string]any{"path": "x"}},
	})
	require.EqualError(t, err, "teleportbeat.config.modules.path: unknown setting (see teleportbeat.reference.yml for the settings that exist)")
}

// TestFirstUseMistakesGetAClearWord: a start time in the future is refused
// (it would read nothing, silently), a Proxy URL is read as host:port, and a
// misspelt event type is a warning naming the closest known type.
func TestFirstUseMistakesGetAClearWord(t *testing.T) {
	c := writeCreds(t)
	_, err := load(t, map[string]any{
		"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity},
		"audit":    map[string]any{"start_time": "2999-01-01T00:00:00Z"},
	})
	require.ErrorContains(t, err, "teleportbeat.audit.start_time: 2999-01-01T00:00:00Z is in the future")

	cfg, err := load(t, map[string]any{
		"teleport": map[string]any{"addr": []any{"https://teleport.example.com", "https://proxy.example.com:3080/"}, "identity_file": c.identity},
		"audit":    map[string]any{"event_types": []any{"user.logn", "session.start", "brand.new.thing"}},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"teleport.example.com:443", "proxy.example.com:3080"}, cfg.Teleport.Addr)
	require.Len(t, cfg.Warnings, 2)
	require.Contains(t, cfg.Warnings[0], `teleportbeat.audit.event_types.0: "user.logn" is not an event type teleportbeat knows (did you mean "user.login"?)`)
	require.Contains(t, cfg.Warnings[1], `"brand.new.thing" is not an event type teleportbeat knows; it is kept`)

	for addr, want := range map[string]string{
		"http://teleport.example.com":      "Teleport is reached over TLS only; write it as host:port, for example teleport.example.com:443",
		"https://teleport.example.com/web": "a Teleport address has no path",
		"teleport.example.com":             "is not a host:port address; write it as host:port",
	} {
		_, err := load(t, map[string]any{"teleport": map[string]any{"addr": addr, "identity_file": c.identity}})
		require.ErrorContains(t, err, "teleportbeat.teleport.addr.0: ", addr)
		require.ErrorContains(t, err, want, addr)
	}
}

// The sweeps' ages: the default two, and [0] for the max_delay sweep alone
// (an empty list keeps the default: the config library merges it away).
func TestLateEventSweepAges(t *testing.T) {
	c := writeCreds(t)
	ages := func(late map[string]any) []time.Duration {
		t.Helper()
		cfg, err := load(t, map[string]any{"teleport": map[string]any{"addr": "a:1", "identity_file": c.identity}, "audit": map[string]any{"late_events": late}})
		require.NoError(t, err)
		return cfg.Audit.LateEvents.Ages()
	}
	require.Equal(t, []time.Duration{time.Minute, 15 * time.Minute}, ages(map[string]any{}))
	require.Equal(t, []time.Duration{time.Minute, 15 * time.Minute}, ages(map[string]any{"sweeps": []any{}}))
	require.Equal(t, []time.Duration{15 * time.Minute}, ages(map[string]any{"sweeps": []any{"0s"}}))
	require.Equal(t, []time.Duration{10 * time.Second, 2 * time.Minute, 5 * time.Minute}, ages(map[string]any{"sweeps": []any{"2m", "10s"}, "max_delay": "5m"}))
	require.Nil(t, ages(map[string]any{"max_delay": "0s"}))
}

// A Proxy CA given inline, as libbeat's ssl settings take it, is accepted;
// a PEM that holds no certificate is refused without printing it.
func TestProxyCAGivenInline(t *testing.T) {
	c := writeCreds(t)
	caPEM, err := os.ReadFile(c.ca)
	require.NoError(t, err)
	_, err = load(t, map[string]any{"teleport": map[string]any{"addr": "a:443", "identity_file": c.identity,
		"proxy_ssl": map[string]any{"certificate_authorities": []string{string(caPEM)}}}})
	require.NoError(t, err)
	notACert := "-----BEGIN PRIVATE KEY-----\nSEKRITSEKRIT\n-----END PRIVATE KEY-----\n"
	_, err = load(t, map[string]any{"teleport": map[string]any{"addr": "a:443", "identity_file": c.identity,
		"proxy_ssl": map[string]any{"certificate_authorities": []string{notACert}}}})
	require.ErrorContains(t, err, "teleportbeat.teleport.proxy_ssl.certificate_authorities.0: the PEM given inline holds no certificate")
	require.NotContains(t, err.Error(), "SEKRIT")
}

// poll_interval_min defaults to 500ms; a poll_interval below it (set
// before the minimum existed) is no error; a minimum of 0 is.
func TestPollIntervalMin(t *testing.T) {
	c := writeCreds(t)
	tp := map[string]any{"addr": "a:1", "identity_file": c.identity}
	cfg, err := load(t, map[string]any{"teleport": tp})
	require.NoError(t, err)
	require.Equal(t, 500*time.Millisecond, cfg.Audit.PollIntervalMin)
	_, err = load(t, map[string]any{"teleport": tp, "audit": map[string]any{"poll_interval": "200ms"}})
	require.NoError(t, err, "an existing config with a short poll_interval keeps working")
	_, err = load(t, map[string]any{"teleport": tp, "audit": map[string]any{"poll_interval_min": "0s"}})
	require.ErrorContains(t, err, "audit.poll_interval_min: must be positive")
}

// memory_limit is 40MiB by default; whether it was set is known (the
// default yields to GOMEMLIMIT, a setting does not).
func TestMemoryLimitDefault(t *testing.T) {
	c := writeCreds(t)
	tp := map[string]any{"addr": "a:1", "identity_file": c.identity}
	cfg, err := load(t, map[string]any{"teleport": tp})
	require.NoError(t, err)
	require.EqualValues(t, 40<<20, cfg.MemoryLimit)
	require.False(t, cfg.MemoryLimitSet)
	cfg, err = load(t, map[string]any{"teleport": tp, "memory_limit": 0})
	require.NoError(t, err)
	require.EqualValues(t, 0, cfg.MemoryLimit)
	require.True(t, cfg.MemoryLimitSet)
}
