// Package agenttest lays out Elastic Agent installs and upgrades on disk
// the way the agent does, for the tests of `teleportbeat agent install`.
// Each step cites the agent code it imitates
// (github.com/elastic/elastic-agent, internal/pkg/agent/application/
// upgrade: upgrade.go, step_unpack.go, cleanup_agent_directories.go).
package agenttest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FilebeatSpec is the shape of the spec the agent ships with Filebeat (its
// inputs trimmed to one), teleportbeat's neighbour in components/.
const FilebeatSpec = `version: 2
inputs:
  - name: filestream
    description: "Filestream"
    platforms: [linux/amd64, linux/arm64, container/amd64, container/arm64]
    outputs: [elasticsearch, kafka, logstash, redis]
    command:
      args: ["-E", "setup.ilm.enabled=false"]
`

// HomeName is a versioned home's directory name (8.13 and newer).
func HomeName(version, hash string) string { return "elastic-agent-" + version + "-" + hash }

// Unpack writes a version's home as step_unpack.go's untar does: every
// file of the package's data/ directory, parents created 0750, modes
// without world bits; the components (Filebeat and its spec) and the
// agent binary. It returns the home's path.
func Unpack(t *testing.T, top, version, hash string) string {
	t.Helper()
	return UnpackAs(t, top, HomeName(version, hash), version)
}

// UnpackAs is Unpack into a home of any name (the pre-8.13 naming,
// elastic-agent-<hash>, or a name the agent would not use).
func UnpackAs(t *testing.T, top, name, version string) string {
	t.Helper()
	home := filepath.Join(top, "data", name)
	for _, f := range []struct {
		rel  string
		mode os.FileMode
		data string
	}{
		{"components/filebeat", 0o750, "#!/bin/sh\necho filebeat\n"},
		{"components/filebeat.spec.yml", 0o640, FilebeatSpec},
		{"elastic-agent", 0o750, "#!/bin/sh\necho elastic-agent " + version + "\n"},
		{"package.version", 0o640, version + "\n"},
	} {
		p := filepath.Join(home, f.rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o750))
		require.NoError(t, os.WriteFile(p, []byte(f.data), f.mode))
	}
	return home
}

// Switch points the install's elastic-agent symlink at the home's binary,
// as changeSymlink does: a new link renamed over the old one.
func Switch(t *testing.T, top, home string) {
	t.Helper()
	link := filepath.Join(top, "elastic-agent")
	tmp := link + ".new"
	_ = os.Remove(tmp)
	require.NoError(t, os.Symlink(filepath.Join(home, "elastic-agent"), tmp))
	require.NoError(t, os.Rename(tmp, link))
}

// Install lays out a fresh install of version: its home and the symlink.
func Install(t *testing.T, top, version, hash string) string {
	t.Helper()
	home := Unpack(t, top, version, hash)
	Switch(t, top, home)
	return home
}

// Upgrade upgrades the install from the home oldHome to version, in
// Upgrader.Upgrade's order: unpack the new home, copy the action store and
// the run directory into it, switch the symlink, write the upgrade marker.
// (The agent then starts the upgrade watcher and re-executes into the new
// home.) It returns the new home.
func Upgrade(t *testing.T, top, oldHome, version, hash string) string {
	t.Helper()
	home := Unpack(t, top, version, hash)
	// copyActionStore: state.enc (and the legacy action_store.yml, state.yml).
	if b, err := os.ReadFile(filepath.Join(top, "data", "state.enc")); err == nil {
		require.NoError(t, os.WriteFile(filepath.Join(home, "state.enc"), b, 0o600))
	}
	// copyRunDirectory: the components' run state.
	run := filepath.Join(home, "run")
	require.NoError(t, os.MkdirAll(run, 0o770))
	if entries, err := os.ReadDir(filepath.Join(oldHome, "run")); err == nil {
		for _, e := range entries {
			require.NoError(t, os.MkdirAll(filepath.Join(run, e.Name()), 0o770))
		}
	}
	Switch(t, top, home)
	// markUpgrade: data/.update-marker.
	require.NoError(t, os.WriteFile(filepath.Join(top, "data", ".update-marker"),
		[]byte("version: "+version+"\nhash: "+hash+"\nversioned_home: data/"+HomeName(version, hash)+"\n"), 0o600))
	return home
}

// Cleanup is what the upgrade watcher does once the new version has run
// for its grace period: the previous home is removed, and the marker.
func Cleanup(t *testing.T, top, oldHome string) {
	t.Helper()
	require.NoError(t, os.RemoveAll(oldHome))
	require.NoError(t, os.Remove(filepath.Join(top, "data", ".update-marker")))
}
