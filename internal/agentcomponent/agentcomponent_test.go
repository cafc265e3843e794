package agentcomponent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/teleportbeat/teleportbeat/internal/testkit/agenttest"
)

// teleportSpec is a minimal valid spec declaring the teleport input.
const teleportSpec = `version: 2
inputs:
  - name: teleport
    description: "Teleport"
    platforms: [linux/amd64, linux/arm64, container/amd64, container/arm64]
    outputs: [elasticsearch]
    command:
      args: ["-E", "management.enabled=true"]
`

// layoutHome lays out a home as the agent's unpacker leaves it.
func layoutHome(t *testing.T, top, name string) string {
	return agenttest.UnpackAs(t, top, name, "")
}

// source is a teleportbeat binary (a script answering `version`) and spec.
func source(t *testing.T, version string) Source {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "teleportbeat")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho \"teleportbeat version "+version+" (linux/amd64), commit x\"\n"), 0o755))
	return Source{Binary: bin, Spec: []byte(teleportSpec)}
}

func homeOf(t *testing.T, top, dir string) Home {
	t.Helper()
	hs, err := Homes(top)
	require.NoError(t, err)
	for _, h := range hs {
		if h.Dir == dir {
			return h
		}
	}
	t.Fatalf("no home %s in %v", dir, hs)
	return Home{}
}

func TestHomes(t *testing.T) {
	top := t.TempDir()
	old := layoutHome(t, top, "elastic-agent-8.12.2-1a2b3c")
	cur := layoutHome(t, top, "elastic-agent-9.3.0-abcdef")
	legacy := layoutHome(t, top, "elastic-agent-0d9e8f")
	snap := layoutHome(t, top, "elastic-agent-9.4.0-SNAPSHOT-123456")
	require.NoError(t, os.MkdirAll(filepath.Join(top, "data", "downloads"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(top, "data", ".update-marker"), nil, 0o600))
	agenttest.Switch(t, top, cur)

	hs, err := Homes(top)
	require.NoError(t, err)
	got := map[string]Home{}
	for _, h := range hs {
		got[filepath.Base(h.Dir)] = h
	}
	require.Len(t, got, 4, "the versioned homes only: %v", hs)
	require.Equal(t, "8.12.2", got[filepath.Base(old)].Version)
	require.Equal(t, "9.4.0-SNAPSHOT", got[filepath.Base(snap)].Version)
	require.Equal(t, "", got[filepath.Base(legacy)].Version)
	require.True(t, got[filepath.Base(cur)].Active)
	require.False(t, got[filepath.Base(old)].Active)

	require.NoError(t, got[filepath.Base(cur)].Compatible())
	require.NoError(t, got[filepath.Base(snap)].Compatible())
	require.ErrorContains(t, got[filepath.Base(old)].Compatible(), "Elastic Agent 8.12.2 is older than 8.13")
	require.ErrorContains(t, got[filepath.Base(legacy)].Compatible(), "older than 8.13 (its home has no version in its name)")

	none, err := Homes(filepath.Join(top, "nothing"))
	require.NoError(t, err)
	require.Empty(t, none)
}

// TestPreviousIsTheVersionAnUpgradeLeft: homes older than the active one
// (by version, the pre-8.13 naming oldest) are the ones an upgrade left;
// the active one and newer ones (an upgrade being unpacked) are not, nor
// is anything when no symlink says which is active.
func TestPreviousIsTheVersionAnUpgradeLeft(t *testing.T) {
	top := t.TempDir()
	legacy := layoutHome(t, top, "elastic-agent-0d9e8f")
	prev := layoutHome(t, top, "elastic-agent-9.9.2-1a2b3c")
	cur := layoutHome(t, top, "elastic-agent-9.10.0-abcdef")
	next := layoutHome(t, top, "elastic-agent-9.11.0-SNAPSHOT-123456")
	hs, err := Homes(top)
	require.NoError(t, err)
	for _, h := range hs {
		require.False(t, Previous(h, hs), "%s: no active home known", h)
	}

	agenttest.Switch(t, top, cur)
	hs, err = Homes(top)
	require.NoError(t, err)
	want := map[string]bool{legacy: true, prev: true, cur: false, next: false}
	for _, h := range hs {
		require.Equal(t, want[h.Dir], Previous(h, hs), "%s (9.9 is older than 9.10, though its name sorts after)", h)
	}

	// Another install's active home says nothing of this one's.
	other := t.TempDir()
	agenttest.Install(t, other, "9.12.0", "fedcba")
	ohs, err := Homes(other)
	require.NoError(t, err)
	require.False(t, Previous(homeOf(t, top, next), append(ohs, homeOf(t, top, next))))
}

// watchDir records the names created, moved in and deleted in dir, in the
// kernel's order (inotify).
func watchDir(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	require.NoError(t, err)
	_, err = unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE)
	require.NoError(t, err)
	return func() []string {
		defer unix.Close(fd)
		require.NoError(t, unix.SetNonblock(fd, true))
		var out []string
		buf := make([]byte, 64<<10)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return out
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			kind := "create"
			switch {
			case ev.Mask&unix.IN_MOVED_TO != 0:
				kind = "rename"
			case ev.Mask&unix.IN_DELETE != 0:
				kind = "delete"
			}
			if !strings.HasPrefix(name, ".") { // temporary names
				out = append(out, kind+" "+name)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		return out
	}
}

// TestPlaceAndRemoveInTheSafeOrder: the binary lands (renamed into place)
// before the spec, with the agent's modes and the directory's owner; a
// second run changes nothing; removal takes the spec out first.
func TestPlaceAndRemoveInTheSafeOrder(t *testing.T) {
	top := t.TempDir()
	home := layoutHome(t, top, "elastic-agent-9.3.0-abcdef")
	agenttest.Switch(t, top, home)
	h := homeOf(t, top, home)
	src := source(t, "0.1.0")
	comp := h.Components()

	events := watchDir(t, comp)
	out, err := Place(context.Background(), h, src, 0)
	require.NoError(t, err)
	require.Equal(t, Placed, out)
	require.Equal(t, []string{"rename teleportbeat", "rename teleportbeat.spec.yml"}, events(), "the binary first, each renamed into place")

	bi, err := os.Stat(filepath.Join(comp, Name))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o750), bi.Mode().Perm())
	si, err := os.Stat(filepath.Join(comp, SpecName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), si.Mode().Perm())
	di, _ := os.Stat(comp)
	du, _ := owner(di)
	bu, _ := owner(bi)
	require.Equal(t, du, bu, "owned as the components directory is")
	require.NoError(t, strictExec(filepath.Join(comp, Name), du))
	require.NoError(t, loadable(comp))

	out, err = Place(context.Background(), h, src, 0)
	require.NoError(t, err)
	require.Equal(t, InPlace, out, "idempotent")

	// A newer teleportbeat replaces the binary.
	newer := source(t, "0.2.0")
	require.NoError(t, os.Chtimes(newer.Binary, time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
	out, err = Place(context.Background(), h, newer, 0)
	require.NoError(t, err)
	require.Equal(t, Placed, out)
	b, _ := os.ReadFile(filepath.Join(comp, Name))
	require.Contains(t, string(b), "0.2.0")

	events = watchDir(t, comp)
	out, err = Remove(h)
	require.NoError(t, err)
	require.Equal(t, Removed, out)
	require.Equal(t, []string{"delete teleportbeat.spec.yml", "delete teleportbeat"}, events(), "the spec first")
	require.NoError(t, loadable(comp), "Filebeat's spec and binary stay")
	out, err = Remove(h)
	require.NoError(t, err)
	require.Equal(t, NotThere, out)
}

// TestASpecThatWouldStopTheAgentIsTakenOut: when another spec in the
// directory declares the teleport input too, the agent would refuse to
// start ("already exists in spec"); Place takes its spec out again.
func TestASpecThatWouldStopTheAgentIsTakenOut(t *testing.T) {
	top := t.TempDir()
	home := layoutHome(t, top, "elastic-agent-9.3.0-abcdef")
	comp := filepath.Join(home, "components")
	require.NoError(t, os.WriteFile(filepath.Join(comp, "other"), []byte("#!/bin/sh\n"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(comp, "other.spec.yml"), []byte(teleportSpec), 0o640))
	h := homeOf(t, top, home)

	out, err := Place(context.Background(), h, source(t, "0.1.0"), 0)
	require.Equal(t, Withdrawn, out)
	require.ErrorContains(t, err, "input 'teleport' already exists in spec 'other.spec.yml'")
	_, statErr := os.Stat(filepath.Join(comp, SpecName))
	require.ErrorIs(t, statErr, os.ErrNotExist, "the spec is out again")
	require.NoError(t, os.Remove(filepath.Join(comp, "other.spec.yml")))
	require.NoError(t, loadable(comp))
}

// TestPlaceWaitsForAHomeBeingUnpacked: called when the agent has created
// a new version's home but not yet its components directory, Place waits
// for it.
func TestPlaceWaitsForAHomeBeingUnpacked(t *testing.T) {
	top := t.TempDir()
	home := filepath.Join(top, "data", "elastic-agent-9.4.0-fedcba")
	require.NoError(t, os.MkdirAll(home, 0o750))
	h := homeOf(t, top, home)

	_, err := Place(context.Background(), h, source(t, "0.1.0"), 0)
	require.ErrorContains(t, err, "components does not exist (a home the agent did not finish unpacking")

	done := make(chan error, 1)
	go func() {
		_, err := Place(context.Background(), h, source(t, "0.1.0"), time.Minute)
		done <- err
	}()
	layoutHome(t, top, "elastic-agent-9.4.0-fedcba")
	require.NoError(t, <-done)
	require.FileExists(t, filepath.Join(home, "components", SpecName))

	// A home the agent removes meanwhile (the upgrade watcher's cleanup of
	// the previous version) ends the wait at once, with no error.
	gone := filepath.Join(top, "data", "elastic-agent-9.5.0-aaaaaa")
	require.NoError(t, os.MkdirAll(gone, 0o750))
	h = homeOf(t, top, gone)
	require.NoError(t, os.Remove(gone))
	out, err := Place(context.Background(), h, source(t, "0.1.0"), time.Hour)
	require.NoError(t, err)
	require.Equal(t, Gone, out)
}

// TestOlderAgentsAreRefused: nothing is placed in an agent older than 8.13.
func TestOlderAgentsAreRefused(t *testing.T) {
	top := t.TempDir()
	home := layoutHome(t, top, "elastic-agent-8.12.2-1a2b3c")
	_, err := Place(context.Background(), homeOf(t, top, home), source(t, "0.1.0"), 0)
	require.ErrorContains(t, err, "older than 8.13")
	require.NoFileExists(t, filepath.Join(home, "components", Name))
}

func TestTheAgentsLoadingRules(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, SpecName), []byte(teleportSpec), 0o640))
	require.ErrorContains(t, loadable(dir), "missing matching binary for "+filepath.Join(dir, SpecName))
	require.NoError(t, os.Mkdir(filepath.Join(dir, Name), 0o750))
	require.ErrorContains(t, loadable(dir), "missing matching binary")
	require.NoError(t, os.Remove(filepath.Join(dir, Name)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, Name), []byte("#!/bin/sh\n"), 0o750))
	require.NoError(t, loadable(dir))

	for name, bad := range map[string]string{
		"only version 2 is allowed":                         strings.Replace(teleportSpec, "version: 2", "version: 1", 1),
		"must define either command or service":             strings.Replace(teleportSpec, "    command:\n      args: [\"-E\", \"management.enabled=true\"]\n", "", 1),
		"defines an unknown platform 'linux/riscv64'":       strings.Replace(teleportSpec, "linux/arm64,", "linux/riscv64,", 1),
		"must define at least one output or one shipper":    strings.Replace(teleportSpec, "outputs: [elasticsearch]", "outputs: []", 1),
		"defines the output 'elasticsearch' more than once": strings.Replace(teleportSpec, "outputs: [elasticsearch]", "outputs: [elasticsearch, elasticsearch]", 1),
		"defines the platform 'linux/amd64' more than once": strings.Replace(teleportSpec, "linux/arm64,", "linux/amd64,", 1),
	} {
		_, err := LoadSpec([]byte(bad))
		require.ErrorContains(t, err, name)
	}

	bin := filepath.Join(dir, Name)
	require.NoError(t, os.Chmod(bin, 0o770))
	require.ErrorContains(t, strictExec(bin, 0), "cannot be writeable by group or other")
	require.NoError(t, os.Chmod(bin, 0o640))
	require.ErrorContains(t, strictExec(bin, 0), "not executable by owner")
	require.NoError(t, os.Chmod(bin, 0o750))
	uid, _ := owner(mustStat(t, bin))
	require.NoError(t, strictExec(bin, uid))
	if uid != 0 {
		require.NoError(t, strictExec(bin, uid))
	} else {
		require.NoError(t, os.Chown(bin, 4242, 4242))
		require.ErrorContains(t, strictExec(bin, 1000), "file owner does not match expected UID or root")
		require.NoError(t, strictExec(bin, 4242), "the agent's own user")
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	i, err := os.Stat(p)
	require.NoError(t, err)
	return i
}

// fakeProc lays out what AgentStarted reads of /proc: the boot time and
// one process running exe, started at start.
func fakeProc(t *testing.T, exe string, boot, start time.Time) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "stat"), fmt.Appendf(nil, "cpu  1 2 3\nbtime %d\nprocesses 10\n", boot.Unix()), 0o644))
	pid := filepath.Join(root, "4242")
	require.NoError(t, os.Mkdir(pid, 0o755))
	require.NoError(t, os.Symlink(exe, filepath.Join(pid, "exe")))
	ticks := int64(start.Sub(boot) / (time.Second / userHZ))
	// Fields 3..21, then starttime (22), as in proc(5); the name has a
	// space and a parenthesis, which the parser must survive.
	stat := fmt.Sprintf("4242 (elastic agent)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 %d 100000 200 18446744073709551615\n", ticks)
	require.NoError(t, os.WriteFile(filepath.Join(pid, "stat"), []byte(stat), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "self"), 0o755)) // not a pid
	return root
}

// TestCheckSaysWhenTheAgentMustRestart: the active home's agent that
// started before teleportbeat was placed is told to restart; one started
// after is fine.
func TestCheckSaysWhenTheAgentMustRestart(t *testing.T) {
	top := t.TempDir()
	home := layoutHome(t, top, "elastic-agent-9.3.0-abcdef")
	agenttest.Switch(t, top, home)
	h := homeOf(t, top, home)
	_, err := Place(context.Background(), h, source(t, "0.1.0"), 0)
	require.NoError(t, err)
	placed := mustStat(t, filepath.Join(h.Components(), SpecName)).ModTime()
	boot := placed.Add(-24 * time.Hour).Truncate(time.Second)

	find := func(fs []Finding, check string) Finding {
		for _, f := range fs {
			if f.Check == check {
				return f
			}
		}
		t.Fatalf("no %s in %v", check, fs)
		return Finding{}
	}
	before := Check(context.Background(), h, "0.1.0", fakeProc(t, filepath.Join(home, "elastic-agent"), boot, placed.Add(-time.Hour)))
	for _, c := range []string{"agent version", "binary", "runs", "spec"} {
		require.Equal(t, OK, find(before, c).Status, "%v", before)
	}
	p := find(before, "agent process")
	require.Equal(t, Warn, p.Status)
	require.Contains(t, p.Detail, "before teleportbeat was placed")
	require.Contains(t, p.Detail, RestartCommand)

	after := Check(context.Background(), h, "0.1.0", fakeProc(t, filepath.Join(home, "elastic-agent"), boot, placed.Add(time.Minute)))
	require.Equal(t, OK, find(after, "agent process").Status, "%v", after)

	other := Check(context.Background(), h, "0.9.0", fakeProc(t, "/usr/bin/something-else", boot, placed))
	require.Equal(t, Warn, find(other, "runs").Status, "another teleportbeat version is placed")
	require.Contains(t, find(other, "agent process").Detail, "no Elastic Agent runs from")

	require.NoError(t, os.Chmod(filepath.Join(h.Components(), Name), 0o775))
	bad := Check(context.Background(), h, "0.1.0", fakeProc(t, filepath.Join(home, "elastic-agent"), boot, placed.Add(time.Minute)))
	require.Equal(t, Error, find(bad, "binary").Status)
	require.Contains(t, find(bad, "binary").Detail, "execution of component prevented: cannot be writeable by group or other")
}

// TestWatchDropIns: the path unit's drop-ins for an agent installed under
// another base path; none for the default paths.
func TestWatchDropIns(t *testing.T) {
	root := t.TempDir()
	s := Systemd{RunDir: filepath.Join(root, "run"), UnitDirs: []string{filepath.Join(root, "lib")}, EtcDir: filepath.Join(root, "etc"), Systemctl: "true", Binary: "/usr/share/teleportbeat/bin/teleportbeat"}
	require.ErrorIs(t, s.Enable(nil), ErrNoWatch, "no systemd")
	require.NoError(t, os.MkdirAll(s.RunDir, 0o755))
	require.ErrorIs(t, s.Enable(nil), ErrNoWatch, "no path unit installed (the .tar.gz)")
	require.NoError(t, os.MkdirAll(s.UnitDirs[0], 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.UnitDirs[0], PathUnit), nil, 0o644))

	require.NoError(t, s.Enable([]string{"/srv/Elastic/Agent"}))
	p, err := os.ReadFile(filepath.Join(s.EtcDir, PathUnit+".d", "agent-path.conf"))
	require.NoError(t, err)
	require.Contains(t, string(p), "[Path]\nPathChanged=/srv/Elastic/Agent/data\n")
	svc, err := os.ReadFile(filepath.Join(s.EtcDir, ServiceUnit+".d", "agent-path.conf"))
	require.NoError(t, err)
	require.Contains(t, string(svc), "ExecStart=\nExecStart=/usr/share/teleportbeat/bin/teleportbeat agent install --watch=false --wait 2m --new-versions-only --agent-path /srv/Elastic/Agent\n")

	require.NoError(t, s.Enable(nil))
	require.NoFileExists(t, filepath.Join(s.EtcDir, PathUnit+".d", "agent-path.conf"), "the default paths need none")
	require.NoError(t, s.Enable([]string{"/srv/Elastic/Agent"}))
	require.NoError(t, s.Disable())
	require.NoFileExists(t, filepath.Join(s.EtcDir, ServiceUnit+".d", "agent-path.conf"))

	s.Systemctl = "false"
	require.ErrorContains(t, s.Enable(nil), "false daemon-reload")
}
