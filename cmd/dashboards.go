package cmd

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cfgfile"
)

// libbeat loads dashboards from path.home/kibana and, when that directory
// is missing (teleportbeat run from elsewhere than its install directory,
// or a binary copied alone), says "Skipping loading dashboards" and exits
// 0 without them. teleportbeat carries its Kibana assets: when the
// directory is missing and no dashboards location is configured, setup
// uses a copy of the embedded ones.

// useEmbeddedDashboards points setup.dashboards.directory at a copy of
// assets (a tree with kibana/ at its root) when path.home/kibana is
// missing. It returns a function that removes the copy.
func useEmbeddedDashboards(c *cobra.Command, assets fs.FS) (func(), error) {
	none := func() {}
	if assets == nil {
		return none, nil
	}
	home := ""
	if f := c.Flags().Lookup("path.home"); f != nil {
		home = f.Value.String()
	}
	if home == "" {
		exe, err := os.Executable()
		if err != nil {
			return none, nil
		}
		home = filepath.Dir(exe)
	}
	if fi, err := os.Stat(filepath.Join(home, "kibana")); err == nil && fi.IsDir() {
		return none, nil
	}
	if cfg, err := cfgfile.Load("", nil); err == nil {
		for _, k := range []string{"setup.dashboards.directory", "setup.dashboards.file", "setup.dashboards.url"} {
			if cfg.HasField(k) {
				return none, nil // the user's choice
			}
		}
	}
	dir, err := os.MkdirTemp("", "teleportbeat-kibana")
	if err != nil {
		return none, fmt.Errorf("copy the embedded Kibana assets: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	err = fs.WalkDir(assets, "kibana", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		cleanup()
		return none, fmt.Errorf("copy the embedded Kibana assets: %w", err)
	}
	if err := c.Flags().Set("E", "setup.dashboards.directory="+filepath.Join(dir, "kibana")); err != nil {
		cleanup()
		return none, fmt.Errorf("use the embedded Kibana assets: %w", err)
	}
	return cleanup, nil
}
