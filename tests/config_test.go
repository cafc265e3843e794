package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadConfigStopsWithAClearError: each bad setting
// stops the beat at start, non-zero, with an error naming the key.
func TestBadConfigStopsWithAClearError(t *testing.T) {
	e := newEnv(t)
	garbage := filepath.Join(e.dir, "garbage-identity")
	require.NoError(t, os.WriteFile(garbage, []byte("this is not an identity file\n"), 0o600))
	base := func(extra string) string {
		return fmt.Sprintf("teleportbeat.teleport.addr: [%q]\noutput.console.enabled: true\n%s", e.tp.Addr(), extra)
	}
	cases := []struct {
		name, config, want string
	}{
		{"unknown key", base(fmt.Sprintf("teleportbeat.teleport.identity_file: %q\nteleportbeat.audit.batchsize: 100\n", e.idFile)),
			"teleportbeat.audit.batchsize: unknown setting"},
		{"missing credentials", base(""),
			"teleportbeat.teleport: missing credentials"},
		{"identity file missing", base("teleportbeat.teleport.identity_file: /nonexistent/identity\n"),
			"teleportbeat.teleport.identity_file: cannot read /nonexistent/identity"},
		{"identity file unreadable as one", base(fmt.Sprintf("teleportbeat.teleport.identity_file: %q\n", garbage)),
			"teleportbeat.teleport.identity_file: cannot read identity file " + garbage},
		{"half a key pair", base(fmt.Sprintf("teleportbeat.teleport.ssl.certificate: %q\n", e.idFile)),
			"teleportbeat.teleport.ssl.key: is required"},
		{"bad duration", base(fmt.Sprintf("teleportbeat.teleport.identity_file: %q\nteleportbeat.audit.poll_interval: 5x\n", e.idFile)),
			"teleportbeat.audit.poll_interval"},
		{"bad timestamp", base(fmt.Sprintf("teleportbeat.teleport.identity_file: %q\nteleportbeat.audit.start_time: yesterday\n", e.idFile)),
			`teleportbeat.audit.start_time: "yesterday" is not an RFC 3339 time`},
		{"key go-ucfg cannot parse (found by fuzzing; it panics inside the parser)", base("-1.A: 1\n"),
			"Error: the configuration cannot be read: a key in the config files given with -c is malformed"},
		{"batch size too large", base(fmt.Sprintf("teleportbeat.teleport.identity_file: %q\nteleportbeat.audit.batch_size: 20000\n", e.idFile)),
			"teleportbeat.audit.batch_size: must be between 1 and 10000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "teleportbeat.yml")
			require.NoError(t, os.WriteFile(path, []byte(c.config), 0o600))
			for _, sub := range [][]string{{"test", "config"}, {"run"}} {
				args := append(sub, "-c", path, "--path.home", t.TempDir(), "-e")
				out, err := exec.Command(beatBin, args...).CombinedOutput()
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "%v must fail; output:\n%s", sub, out)
				require.NotZero(t, exit.ExitCode())
				require.Contains(t, string(out), c.want, "%v output", sub)
			}
		})
	}

	// A -E setting go-ucfg cannot parse is reported the same way.
	out, err := exec.Command(beatBin, "test", "config", "-E", "-1.A=3", "--path.home", t.TempDir()).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "Error: the configuration cannot be read: a key in the -E settings is malformed")
	require.NotContains(t, string(out), "goroutine", "no stack trace")

	// And a good one passes `test config`.
	path := filepath.Join(t.TempDir(), "teleportbeat.yml")
	require.NoError(t, os.WriteFile(path, []byte(base(fmt.Sprintf("teleportbeat.teleport.identity_file: %q\n", e.idFile))), 0o600))
	out, err = exec.Command(beatBin, "test", "config", "-c", path, "--path.home", t.TempDir()).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "Config OK")
}
