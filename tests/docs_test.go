package tests

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// supportedTeleport are the Teleport versions of README's support matrix
// the double speaks, oldest first.
var supportedTeleport = []string{"12.4.32", "13.1.3", "16.4.6", "18.0.0-dev"}

// TestDocs runs the marked blocks of README.md and docs/*.md as written
// (tests/doctest_test.go): the example Teleport is the double, serving the
// sample events and a day of generated ones after README's start_time;
// Elasticsearch and Kibana are the recording stand-ins; teleportbeat and
// teleportbeat.yml sit side by side in a home directory, as in the
// archive, whose shipped teleportbeat.yml is the starting configuration.
func TestDocs(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	require.NoError(t, err)
	files = append([]string{filepath.Join(repoRoot, "README.md")}, files...)
	marked := 0
	for _, f := range files {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		rel, _ := filepath.Rel(repoRoot, f)
		blocks, err := parseDoc(rel, string(text))
		require.NoError(t, err)
		if len(blocks) == 0 {
			continue
		}
		marked += len(blocks)
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			newDocScenario(t).runAll(blocks)
		})
	}
	require.GreaterOrEqual(t, marked, 15, "README's command blocks are marked")
}

func newDocScenario(t *testing.T) *docScenario {
	e := newEnv(t)
	e.addCorpus()
	// README's example start_time is 2025-01-01: a day of events after it
	after := e.gen.Events(400, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), 3*time.Minute)
	e.tp.Store.Add(after...)
	// and the last minutes' events, as a cluster in use has.
	after = append(after, e.addGenerated(100)...)
	want := expectedIDs(after)

	es, kb := estest.New(), estest.NewKibana()
	esSrv, kbSrv := es.Server(), kb.Server()
	t.Cleanup(esSrv.Close)
	t.Cleanup(kbSrv.Close)

	home := t.TempDir()
	copyFile(t, beatBin, filepath.Join(home, "teleportbeat"), 0o755)
	copyFile(t, e.idFile, filepath.Join(home, "identity"), 0o600)
	// README's several clusters: the root is the double, and a leaf.
	copyFile(t, e.idFile, filepath.Join(home, "root.identity"), 0o600)
	leaf := newLeaf(t, home, teleporttest.Config{ClusterName: "leaf-eu"})
	// README's response endpoint: its certificates and Kibana's.
	respondCerts(t, home)
	s := &docScenario{
		t:    t,
		home: home,
		subst: []string{
			"teleport.example.com:443", e.tp.Addr(),
			"leaf-eu.example.com:3025", leaf.tp.Addr(),
			"https://elasticsearch.example.com:9200", esSrv.URL,
			"https://kibana.example.com:5601", kbSrv.URL,
			`hosts: ["localhost:9200"]`, fmt.Sprintf("hosts: [%q]", esSrv.URL),
			"/etc/teleportbeat/", home + "/",
		},
		env: []string{"TELEPORTBEAT_DEMO_DIR=" + filepath.Join(t.TempDir(), "demo-output")},
		until: func() error {
			stored := 0
			for id := range want {
				if _, ok := es.Doc(id); ok {
					stored++
				}
			}
			if stored < len(want) {
				return fmt.Errorf("%d of the %d events after 2025-01-01 stored", stored, len(want))
			}
			return nil
		},
		roles: func(version string) bool {
			for _, v := range supportedTeleport {
				tp, err := teleporttest.New(teleporttest.Config{Version: v})
				require.NoError(t, err)
				err = tp.CheckRole(version)
				tp.Stop()
				if err != nil {
					return false
				}
			}
			return true
		},
	}
	shipped, err := os.ReadFile(filepath.Join(repoRoot, "teleportbeat.yml"))
	require.NoError(t, err)
	cfg := s.replace(string(shipped)) + fmt.Sprintf("setup.kibana.host: %q\n", kbSrv.URL)
	require.NoError(t, os.WriteFile(s.cfgPath(), []byte(cfg), 0o600))
	return s
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// The scenario's substitutions are whole example names: a documented
// host or path that is not one of them stays as written (and fails).
func TestDocSubstitutionsAreExampleNames(t *testing.T) {
	s := &docScenario{subst: []string{"teleport.example.com:443", "127.0.0.1:1", "/etc/teleportbeat/", "/h/"}}
	require.Equal(t, "addr: [127.0.0.1:1] id: /h/identity other: teleport.example.org:443",
		s.replace("addr: [teleport.example.com:443] id: /etc/teleportbeat/identity other: teleport.example.org:443"))
	require.True(t, strings.HasPrefix(s.replace("/etc/teleportbeat/setup"), "/h/"))
}

// TestEveryPackageIsInTheLayout: README's layout table and
// docs/architecture.md name every package of the module (a directory of
// Go files), so that a newcomer finds each one's role.
func TestEveryPackageIsInTheLayout(t *testing.T) {
	pkgs := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && filepath.Dir(path) != repoRoot {
			rel, _ := filepath.Rel(repoRoot, filepath.Dir(path))
			pkgs[rel] = true
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, len(pkgs), 40, "every package of the module")
	for _, doc := range []string{"README.md", filepath.Join("docs", "architecture.md")} {
		b, err := os.ReadFile(filepath.Join(repoRoot, doc))
		require.NoError(t, err)
		for rel := range pkgs {
			named := strings.Contains(string(b), "`"+rel+"`") || strings.Contains(string(b), "`"+rel+"/")
			require.True(t, named, "%s does not name the package %s", doc, rel)
		}
	}
}
