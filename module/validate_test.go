package module

import (
	"archive/zip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/package-spec/v3/code/go/pkg/validator"

	"github.com/teleportbeat/teleportbeat/internal/build/fleetpkg"
	"github.com/teleportbeat/teleportbeat/internal/build/packaging"
)

// TestPackageSpecValidatesThePackage runs Elastic's own package validator
// (package-spec, the rules Fleet, Kibana's package upload and
// elastic-package apply) on the Fleet package's source.
func TestPackageSpecValidatesThePackage(t *testing.T) {
	if err := validator.ValidateFromPath("teleportbeat"); err != nil {
		t.Fatalf("package-spec refuses module/teleportbeat:\n%v", err)
	}
}

// TestPackageSpecValidatesTheBuiltZip validates the zip `go tool mage
// package` builds for Kibana's upload API, as a built package: without
// _dev, its ECS fields resolved.
func TestPackageSpecValidatesTheBuiltZip(t *testing.T) {
	pkg, err := fleetpkg.Load("teleportbeat")
	require.NoError(t, err)
	out := t.TempDir()
	zipPath, err := packaging.FleetPackage("..", out, pkg.Manifest.Version, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(out, "teleportbeat-"+pkg.Manifest.Version+".zip"), zipPath)
	if err := validator.ValidateFromZip(zipPath); err != nil {
		t.Fatalf("package-spec refuses %s:\n%v", filepath.Base(zipPath), err)
	}
	zr, err := zip.OpenReader(zipPath)
	require.NoError(t, err)
	defer zr.Close()
	for _, f := range zr.File {
		require.NotContains(t, f.Name, "/_dev/", "a built package has no _dev")
		if strings.HasSuffix(f.Name, "/fields/ecs.yml") {
			rc, err := f.Open()
			require.NoError(t, err)
			b := make([]byte, f.UncompressedSize64)
			_, _ = rc.Read(b)
			rc.Close()
			require.NotContains(t, string(b), "external: ecs", "%s: resolved, as elastic-package builds it", f.Name)
			require.Contains(t, string(b), "type: keyword")
		}
	}
}
