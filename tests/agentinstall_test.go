package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/teleportbeat/teleportbeat/internal/agentcomponent"
	"github.com/teleportbeat/teleportbeat/internal/testkit/agenttest"
)

// agentCmd runs teleportbeat's agent commands against the install at top.
func agentCmd(t *testing.T, top string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(beatBin, append(args, "--agent-path", top)...).CombinedOutput()
	return string(out), err
}

// pathUnit stands in for systemd running the packages' path unit: on every
// change of an entry of the watched directories (systemd's PathChanged on
// a directory: IN_CREATE, IN_DELETE, IN_MOVED_*, IN_CLOSE_WRITE,
// IN_ATTRIB), it starts the service's ExecStart, read from the unit file
// as packaged, one run at a time with the triggers that came meanwhile
// folded into one more run, as systemd does with a oneshot service. The
// binary is the one under test and --agent-path the test's install, as the
// drop-in `agent install --agent-path` writes.
type pathUnit struct {
	mu      sync.Mutex
	runs    []string // each run's output
	errs    []error
	started int // runs started
	trigger chan struct{}
}

func startPathUnit(t *testing.T, top string) *pathUnit {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "internal", "build", "packaging", "files", "teleportbeat-agent-component.service"))
	require.NoError(t, err)
	var args []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			args = strings.Fields(v)
		}
	}
	require.Equal(t, "/usr/share/teleportbeat/bin/teleportbeat", args[0], "the packaged binary")
	args = append(args[1:], "--agent-path", top)

	dataDir := filepath.Join(top, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o750))
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	require.NoError(t, err)
	_, err = unix.InotifyAddWatch(fd, dataDir, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_ATTRIB)
	require.NoError(t, err)
	u := &pathUnit{trigger: make(chan struct{}, 1)}
	trigger := u.trigger
	stop := make(chan struct{})
	go func() { // reads the kernel's events
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n < unix.SizeofInotifyEvent {
				return // closed
			}
			select {
			case trigger <- struct{}{}:
			default: // a run is pending already
			}
		}
	}()
	done := make(chan struct{})
	go func() { // the service, one run at a time
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-trigger:
			}
			u.mu.Lock()
			u.started++
			u.mu.Unlock()
			out, err := exec.Command(beatBin, args...).CombinedOutput()
			u.mu.Lock()
			u.runs = append(u.runs, string(out))
			if err != nil {
				u.errs = append(u.errs, err)
			}
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		unix.Close(fd)
		<-done
	})
	return u
}

// after does change (which must trigger the unit) and waits until a run
// started after it has finished and no other is pending.
func (u *pathUnit) after(t *testing.T, what string, change func()) {
	t.Helper()
	u.mu.Lock()
	before := u.started
	u.mu.Unlock()
	change()
	waitFor(t, time.Minute, "a run of the path unit after "+what, func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.started > before && len(u.runs) == u.started && len(u.trigger) == 0
	})
}

func (u *pathUnit) output() (string, []error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.runs, "---\n"), append([]error(nil), u.errs...)
}

// words is s with every run of white space one space.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

// placed says whether teleportbeat's binary and spec are in the home, and
// fails the test at once when the spec is there without its binary (the
// state that stops the whole agent).
func placed(t *testing.T, home string) bool {
	t.Helper()
	_, specErr := os.Stat(filepath.Join(home, "components", agentcomponent.SpecName))
	bin, binErr := os.ReadFile(filepath.Join(home, "components", agentcomponent.Name))
	if specErr == nil && binErr != nil {
		t.Fatalf("a spec without its binary in %s", home)
	}
	self, err := os.ReadFile(beatBin)
	require.NoError(t, err)
	return specErr == nil && binErr == nil && bytes.Equal(bin, self)
}

// TestAgentInstallSurvivesAnAgentUpgrade: `teleportbeat agent install`
// places teleportbeat into an installed agent (checked as the agent would
// load it, idempotent); then, with the packages' path unit watching, an
// upgrade laid out exactly as the agent's upgrader does it finds
// teleportbeat in the new version without a manual step, and after the
// upgrade watcher's cleanup and a second upgrade too; --uninstall takes it
// out of every version, never leaving a spec without its binary.
func TestAgentInstallSurvivesAnAgentUpgrade(t *testing.T) {
	t.Parallel()
	top := filepath.Join(t.TempDir(), "Elastic", "Agent")
	v1 := agenttest.Install(t, top, "9.2.1", "a1b2c3")

	out, err := agentCmd(t, top, "test", "agent")
	require.Error(t, err, "not placed yet:\n%s", out)
	require.Contains(t, out, "is not there: run `sudo teleportbeat agent install`")

	out, err = agentCmd(t, top, "agent", "install", "--watch=false")
	require.NoError(t, err, out)
	require.Contains(t, out, "Elastic Agent 9.2.1 ("+v1+", active): placed")
	require.Contains(t, words(out), "spec... OK input teleport for linux/")
	require.True(t, placed(t, v1))
	info, err := os.Stat(filepath.Join(v1, "components", agentcomponent.Name))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o750), info.Mode().Perm(), "no write for group or other, whatever the umask")

	out, err = agentCmd(t, top, "agent", "install", "--watch=false")
	require.NoError(t, err, out)
	require.Contains(t, out, "Elastic Agent 9.2.1 ("+v1+", active): already in place")

	out, err = agentCmd(t, top, "test", "agent")
	require.NoError(t, err, out)
	for _, check := range []string{"agent version... OK 9.2.1", "binary... OK", "runs... OK teleportbeat version", "spec... OK"} {
		require.Contains(t, words(out), check)
	}

	// The upgrade, with the path unit watching.
	unit := startPathUnit(t, top)
	v2 := agenttest.Upgrade(t, top, v1, "9.3.0", "d4e5f6")
	waitFor(t, time.Minute, "teleportbeat in the upgraded agent's components", func() bool { return placed(t, v2) })
	// The upgrade watcher's cleanup of the version the upgrade left
	// (os.RemoveAll) may take teleportbeat's files out first while a run
	// of the path unit is going: the run must not put them back, or the
	// removal fails with "directory not empty" and a half-removed home
	// stays behind.
	unit.after(t, "the previous version's teleportbeat was removed", func() {
		for _, f := range []string{agentcomponent.SpecName, agentcomponent.Name} {
			require.NoError(t, os.Remove(filepath.Join(v1, "components", f)))
		}
		now := time.Now()
		require.NoError(t, os.Chtimes(filepath.Join(top, "data", ".update-marker"), now, now)) // a change the unit sees
	})
	left, err := os.ReadDir(filepath.Join(v1, "components"))
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{"filebeat", "filebeat.spec.yml"}, names, "nothing written into the version the upgrade left")
	runs, _ := unit.output()
	require.Contains(t, runs, "Elastic Agent 9.2.1 ("+v1+"): left alone: older than the active version")
	agenttest.Cleanup(t, top, v1)
	v3 := agenttest.Upgrade(t, top, v2, "9.3.1", "0a9b8c")
	waitFor(t, time.Minute, "teleportbeat in the second upgrade's components", func() bool { return placed(t, v3) })
	agenttest.Cleanup(t, top, v2)
	waitFor(t, time.Minute, "the path unit's runs to finish", func() bool {
		_, after := agentCmd(t, top, "test", "agent")
		return after == nil
	})
	runs, errs := unit.output()
	require.Empty(t, errs, "every run of the path unit succeeded:\n%s", runs)
	require.Contains(t, runs, "Elastic Agent 9.3.0 (")
	require.Contains(t, runs, "Elastic Agent 9.3.1 (")

	out, err = agentCmd(t, top, "test", "agent")
	require.NoError(t, err, out)
	require.Contains(t, out, "Elastic Agent 9.3.1 ("+v3+", active)")
	require.NotContains(t, out, "9.2.1", "the old version is gone with its home")

	out, err = agentCmd(t, top, "agent", "install", "--uninstall", "--watch=false")
	require.NoError(t, err, out)
	require.Contains(t, out, "Elastic Agent 9.3.1 ("+v3+", active): removed")
	require.NoFileExists(t, filepath.Join(v3, "components", agentcomponent.SpecName))
	require.NoFileExists(t, filepath.Join(v3, "components", agentcomponent.Name))
	require.FileExists(t, filepath.Join(v3, "components", "filebeat.spec.yml"), "the agent's own components stay")
}

// TestAgentInstallRefusesWhatTheAgentCannotRun: an agent older than 8.13,
// and no agent at all, are said with what to do.
func TestAgentInstallRefusesWhatTheAgentCannotRun(t *testing.T) {
	t.Parallel()
	top := filepath.Join(t.TempDir(), "Agent")
	out, err := agentCmd(t, top, "agent", "install", "--watch=false")
	require.Error(t, err)
	require.Contains(t, out, "no Elastic Agent is installed in ["+top+"] (no data/elastic-agent-* directory); give its directory with --agent-path")

	old := agenttest.Install(t, top, "8.12.2", "abcdef")
	out, err = agentCmd(t, top, "agent", "install", "--watch=false")
	require.Error(t, err)
	require.Contains(t, out, "Elastic Agent 8.12.2 is older than 8.13, which teleportbeat needs")
	require.NoFileExists(t, filepath.Join(old, "components", agentcomponent.Name))

	// The .tar.gz has no path unit: the command says that upgrades need it
	// run again.
	agenttest.Install(t, top, "9.3.0", "123abc")
	out, _ = agentCmd(t, top, "agent", "install")
	require.Contains(t, out, "Elastic Agent 9.3.0 (")
	require.Contains(t, out, "no watcher for agent upgrades on this host")
}
