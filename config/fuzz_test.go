package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	conf "github.com/elastic/elastic-agent-libs/config"
)

// FuzzLoad feeds random and malformed YAML to the config loader: it never
// panics, and every error it returns names a key under teleportbeat.
// Seeded with the shipped configs; `go test -fuzz FuzzLoad ./config` runs
// it, testdata/fuzz/FuzzLoad keeps the inputs worth keeping.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"teleportbeat.yml", "teleportbeat.reference.yml"} {
		b, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		"teleportbeat.audit.batch_size: -1\n",
		"teleportbeat.audit.batch_size: [1, 2]\n",
		"teleportbeat.teleport.addr: {a: b}\n",
		"teleportbeat.audit.start_time: 12\n",
		"teleportbeat.audit.window: 1x\n",
		"teleportbeat.registry.file_permissions: 0o777777\n",
		"teleportbeat: [1]\n",
		"teleportbeat.sessions: null\n",
		"teleportbeat.audit.event_types: [[x]]\n",
		"teleportbeat.teleport.identity_file: /nonexistent\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, yaml string) {
		c, err := parseYAML(yaml)
		if err != nil {
			return // not YAML, or a key go-ucfg cannot take: reported by libbeat or cmd.Execute
		}
		section, err := c.Child(Namespace, -1)
		if err != nil {
			if !c.HasField(Namespace) {
				return
			}
			// teleportbeat is there but is not an object: libbeat's own
			// error names it.
			if !strings.Contains(err.Error(), Namespace) {
				t.Fatalf("error does not name %s: %v", Namespace, err)
			}
			return
		}
		if _, err := Load(section); err != nil && !strings.Contains(err.Error(), Namespace+".") {
			t.Fatalf("error does not name the key: %v\ninput:\n%s", err, yaml)
		}
	})
}

// parseYAML is go-ucfg's parser, with its panics on malformed keys (such
// as `-1.A:`, testdata/fuzz/FuzzLoad/bb154e99b812fcb0) turned into errors,
// as cmd.Execute does for the binary (tests/config_test.go runs it).
func parseYAML(yaml string) (c *conf.C, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-ucfg panicked: %v", r)
		}
	}()
	return conf.NewConfigWithYAML([]byte(yaml), "fuzz")
}
