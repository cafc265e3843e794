// Package version holds teleportbeat's version. Release builds stamp the
// commit and build time:
//
//	go build -ldflags "-X github.com/teleportbeat/teleportbeat/internal/version.Commit=$(git rev-parse HEAD)"
//
// A plain `go build` in a git checkout has them too, from the VCS
// information Go records in the binary (BuildInfo).
package version

import (
	"runtime/debug"
	"strings"
)

// Version is teleportbeat's semantic version. It is the beat's version for
// libbeat too: agent.version, and the names of the index template and data
// stream (teleportbeat-<version>), follow teleportbeat's releases.
var Version = "0.1.0"

// FleetPackage is the version of the Fleet package teleportbeat generates
// (module/teleportbeat/manifest.yml), which the detection rules name as
// their related integration.
const FleetPackage = "0.1.0"

// Commit is the git commit the binary was built from ("" when unknown).
var Commit = ""

// BuildTime is when the binary was built, RFC 3339 ("" when unknown).
var BuildTime = ""

// Build returns the commit and build time: the stamped ones, else Go's VCS
// information ("-dirty" when the tree had changes), else "unknown".
func Build() (commit, built string) {
	return build(Commit, BuildTime, debug.ReadBuildInfo)
}

func build(commit, built string, read func() (*debug.BuildInfo, bool)) (string, string) {
	if commit == "" || built == "" {
		if bi, ok := read(); ok {
			var rev, at string
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.time":
					at = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if commit == "" && rev != "" {
				commit = rev
				if modified && !strings.HasSuffix(commit, "-dirty") {
					commit += "-dirty"
				}
			}
			if built == "" && at != "" {
				built = at + " (commit time)"
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if built == "" {
		built = "unknown"
	}
	return commit, built
}
