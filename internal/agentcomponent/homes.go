// Package agentcomponent places teleportbeat into Elastic Agent's
// components directories, where the agent finds the programs it runs for
// a policy's inputs, and checks that the agent can start it from there.
//
// What it follows, read in Elastic Agent's source:
//   - Each agent version lives in its own versioned home,
//     <top>/data/elastic-agent-<version>-<hash> (8.13 and newer; before,
//     elastic-agent-<hash>), with the programs in its components/
//     directory. <top> is /opt/Elastic/Agent for `elastic-agent install`
//     and /var/lib/elastic-agent for the .deb and .rpm packages; <top>/
//     elastic-agent (or /usr/share/elastic-agent/bin/elastic-agent) is a
//     symlink to the active home's binary.
//   - An upgrade (internal/pkg/agent/application/upgrade/upgrade.go,
//     step_unpack.go) unpacks the new version into a new home, copies the
//     action store and the run directory, switches the symlink, writes
//     data/.update-marker, starts the upgrade watcher and re-executes: the
//     new agent reads its own components directory, where teleportbeat is
//     not, unless something puts it there.
//   - The agent loads every <name>.spec.yml of components/ at start
//     (pkg/component/load.go LoadRuntimeSpecs) and refuses to start at all
//     when one has no <name> binary beside it ("missing matching binary");
//     two specs declaring one input also stop it. It runs a binary only when
//     it is executable by its owner, not writable by group or other, and
//     owned by root or the agent's user
//     (HasStrictExecPermsAndOwnership).
//
// So the binary is placed first and the spec after it, each written under
// a temporary name and renamed into place; removal goes the other way.
package agentcomponent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultTops are the agent's top directories on Linux: `elastic-agent
// install` (from the .tar.gz) and the .deb and .rpm packages.
var DefaultTops = []string{"/opt/Elastic/Agent", "/var/lib/elastic-agent"}

// Name is the component's name: the binary and <Name>.spec.yml.
const Name = "teleportbeat"

// SpecName is the spec's file name in the components directory.
const SpecName = Name + ".spec.yml"

// MinVersion is the oldest agent teleportbeat runs under: the Fleet
// package's condition, and the first with version-named homes.
var MinVersion = [3]int{8, 13, 0}

// Home is one installed agent version.
type Home struct {
	Top     string // the install's top directory
	Dir     string // its versioned home, <top>/data/elastic-agent-...
	Version string // the agent's version from the home's name; "" for the pre-8.13 naming
	Active  bool   // the install's symlink points into it
}

// Components is the home's components directory.
func (h Home) Components() string { return filepath.Join(h.Dir, "components") }

func (h Home) String() string {
	v := h.Version
	if v == "" {
		v = "older than 8.13"
	}
	s := fmt.Sprintf("Elastic Agent %s (%s", v, h.Dir)
	if h.Active {
		s += ", active"
	}
	return s + ")"
}

var (
	// data/elastic-agent-9.3.0-abc123, data/elastic-agent-9.3.0-SNAPSHOT-abc123
	versionedHome = regexp.MustCompile(`^elastic-agent-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)-([0-9a-f]{6})$`)
	// data/elastic-agent-abc123 (before 8.13)
	hashedHome = regexp.MustCompile(`^elastic-agent-([0-9a-f]{6})$`)
)

// Homes lists the agent versions installed under top, oldest name first.
// A top without a data directory has none (and no error).
func Homes(top string) ([]Home, error) {
	entries, err := os.ReadDir(filepath.Join(top, "data"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the agent's data directory: %w", err)
	}
	active := activeHome(top)
	var homes []Home
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		h := Home{Top: top, Dir: filepath.Join(top, "data", e.Name())}
		if m := versionedHome.FindStringSubmatch(e.Name()); m != nil {
			h.Version = m[1]
		} else if !hashedHome.MatchString(e.Name()) {
			continue
		}
		h.Active = active != "" && (active == h.Dir || strings.HasPrefix(active, h.Dir+string(filepath.Separator)))
		homes = append(homes, h)
	}
	return homes, nil
}

// activeHome is where the install's elastic-agent symlink points ("" when
// it cannot be read). The .deb and .rpm packages keep theirs in
// /usr/share/elastic-agent/bin.
func activeHome(top string) string {
	links := []string{filepath.Join(top, "elastic-agent")}
	if filepath.Clean(top) == "/var/lib/elastic-agent" {
		links = append(links, "/usr/share/elastic-agent/bin/elastic-agent")
	}
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil {
			continue
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(l), target)
		}
		return filepath.Clean(target)
	}
	return ""
}

// Previous says whether h is older than the active home of its install:
// the version an upgrade left, which the upgrade watcher keeps for its
// grace period (to roll back to) and then removes with os.RemoveAll
// (cleanup_agent_directories.go). The path unit leaves such a home alone:
// teleportbeat was placed there while it was active, and writing into it
// while the watcher removes it would make that removal fail ("directory
// not empty") and bring a half-removed home back. With no active home
// known (no symlink), nothing is previous.
func Previous(h Home, homes []Home) bool {
	if h.Active {
		return false
	}
	for _, a := range homes {
		if !a.Active || a.Top != h.Top {
			continue
		}
		if h.Version == "" {
			return a.Version != "" // the pre-8.13 naming is older than any versioned home
		}
		hv, err1 := parseVersion(h.Version)
		av, err2 := parseVersion(a.Version)
		return err1 == nil && err2 == nil && slices.Compare(hv[:], av[:]) < 0
	}
	return false
}

// Compatible says whether teleportbeat runs under the home's agent.
func (h Home) Compatible() error {
	if h.Version == "" {
		return fmt.Errorf("%s is an Elastic Agent older than 8.13 (its home has no version in its name); teleportbeat needs 8.13 or newer", h.Dir)
	}
	v, err := parseVersion(h.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Dir, err)
	}
	if slices.Compare(v[:], MinVersion[:]) < 0 {
		return fmt.Errorf("Elastic Agent %s is older than 8.13, which teleportbeat needs (the V2 control protocol and the Fleet package's condition)", h.Version)
	}
	return nil
}

func parseVersion(s string) ([3]int, error) {
	var v [3]int
	core, _, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("version %q is not major.minor.patch", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("version %q is not major.minor.patch", s)
		}
		v[i] = n
	}
	return v, nil
}
