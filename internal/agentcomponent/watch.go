package agentcomponent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PathUnit is the systemd path unit the .deb and .rpm packages install: it
// starts ServiceUnit (`teleportbeat agent install --watch=false --wait 2m
// --new-versions-only`)
// whenever an agent's data directory changes, which an upgrade does first
// of all when it starts unpacking the new version.
const (
	PathUnit    = "teleportbeat-agent-component.path"
	ServiceUnit = "teleportbeat-agent-component.service"
)

// Systemd is where the watch is set up.
type Systemd struct {
	RunDir    string   // /run/systemd/system: systemd runs this host
	UnitDirs  []string // where packages put units
	EtcDir    string   // /etc/systemd/system, for drop-ins
	Systemctl string   // the systemctl command
	Binary    string   // the teleportbeat binary the service runs
}

// DefaultSystemd is the host's systemd.
func DefaultSystemd(binary string) Systemd {
	return Systemd{
		RunDir:    "/run/systemd/system",
		UnitDirs:  []string{"/lib/systemd/system", "/usr/lib/systemd/system"},
		EtcDir:    "/etc/systemd/system",
		Systemctl: "systemctl",
		Binary:    binary,
	}
}

// ErrNoWatch says the path unit is not installed (teleportbeat from the
// .tar.gz, or no systemd): an agent upgrade needs the command run again.
var ErrNoWatch = errors.New("no watcher for agent upgrades on this host: the .deb and .rpm packages install one (" + PathUnit + "); without it, run `sudo teleportbeat agent install` again after each Elastic Agent upgrade")

func (s Systemd) installed() bool {
	if _, err := os.Stat(s.RunDir); err != nil {
		return false
	}
	for _, d := range s.UnitDirs {
		if _, err := os.Stat(filepath.Join(d, PathUnit)); err == nil {
			return true
		}
	}
	return false
}

// dropIns are the drop-in files for agent tops other than the defaults.
func (s Systemd) dropIns() (pathConf, serviceConf string) {
	return filepath.Join(s.EtcDir, PathUnit+".d", "agent-path.conf"), filepath.Join(s.EtcDir, ServiceUnit+".d", "agent-path.conf")
}

// DropInContents are the drop-ins that make the path unit watch tops and
// the service place teleportbeat there; none for the default tops.
func (s Systemd) DropInContents(tops []string) (pathConf, serviceConf string) {
	if len(tops) == 0 {
		return "", ""
	}
	var p, args strings.Builder
	p.WriteString("# Written by `teleportbeat agent install --agent-path`.\n[Path]\n")
	for _, t := range tops {
		fmt.Fprintf(&p, "PathChanged=%s\n", filepath.Join(t, "data"))
		fmt.Fprintf(&args, " --agent-path %s", t)
	}
	svc := fmt.Sprintf("# Written by `teleportbeat agent install --agent-path`.\n[Service]\nExecStart=\nExecStart=%s agent install --watch=false --wait 2m --new-versions-only%s\n", s.Binary, args.String())
	return p.String(), svc
}

// Enable turns the watch on for tops (nil: the default tops).
func (s Systemd) Enable(tops []string) error {
	if !s.installed() {
		return ErrNoWatch
	}
	pathFile, svcFile := s.dropIns()
	pathConf, svcConf := s.DropInContents(tops)
	for _, f := range []struct{ path, content string }{{pathFile, pathConf}, {svcFile, svcConf}} {
		if f.content == "" {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, []byte(f.content), 0o644); err != nil {
			return err
		}
	}
	if err := s.run("daemon-reload"); err != nil {
		return err
	}
	return s.run("enable", "--now", PathUnit)
}

// Disable turns the watch off and removes the drop-ins.
func (s Systemd) Disable() error {
	if !s.installed() {
		return nil
	}
	if err := s.run("disable", "--now", PathUnit); err != nil {
		return err
	}
	pathFile, svcFile := s.dropIns()
	for _, f := range []string{pathFile, svcFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return s.run("daemon-reload")
}

func (s Systemd) run(args ...string) error {
	out, err := exec.Command(s.Systemctl, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", s.Systemctl, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
