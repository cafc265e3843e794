package teleport

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/config"
)

func TestWarnReadableSecrets(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		mode os.FileMode
		tc   func(path string) config.Teleport
		warn bool
	}{
		{"private identity file", 0o600, func(p string) config.Teleport { return config.Teleport{IdentityFile: p} }, false},
		{"identity file readable by the group", 0o640, func(p string) config.Teleport { return config.Teleport{IdentityFile: p} }, true},
		{"identity file readable by all", 0o644, func(p string) config.Teleport { return config.Teleport{IdentityFile: p} }, true},
		{"key readable by all", 0o644, func(p string) config.Teleport {
			var tc config.Teleport
			tc.SSL.Key = p
			return tc
		}, true},
		{"private key", 0o400, func(p string) config.Teleport {
			var tc config.Teleport
			tc.SSL.Key = p
			return tc
		}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i)))
			require.NoError(t, os.WriteFile(path, []byte("secret"), c.mode))
			require.NoError(t, os.Chmod(path, c.mode))
			log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
			WarnReadableSecrets(log, c.tc(path))
			if c.warn {
				require.Contains(t, logs.String(), "can be read by other users")
				require.Contains(t, logs.String(), path)
			} else {
				require.Empty(t, logs.String())
			}
		})
	}
}
