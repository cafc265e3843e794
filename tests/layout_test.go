package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryPackageIsInTheLayout: README's layout table and
// docs/architecture.md name every package of the module, so that a
// newcomer finds each one's role.
func TestEveryPackageIsInTheLayout(t *testing.T) {
	list := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	list.Dir = repoRoot
	out, err := list.Output()
	require.NoError(t, err)
	require.Greater(t, len(strings.Fields(string(out))), 40, "every package of the module")
	for _, doc := range []string{"README.md", filepath.Join("docs", "architecture.md")} {
		b, err := os.ReadFile(filepath.Join(repoRoot, doc))
		require.NoError(t, err)
		for _, dir := range strings.Fields(string(out)) {
			rel, err := filepath.Rel(repoRoot, dir)
			require.NoError(t, err)
			if rel == "." {
				continue // the module's main package
			}
			named := strings.Contains(string(b), "`"+rel+"`") || strings.Contains(string(b), "`"+rel+"/`") || strings.Contains(string(b), "`"+rel+"/")
			require.True(t, named, "%s does not name the package %s", doc, rel)
		}
	}
}
