// Package version holds teleportbeat's version, stamped at build time:
//
//	go build -ldflags "-X github.com/teleportbeat/teleportbeat/internal/version.Commit=$(git rev-parse HEAD)"
package version

// Version is teleportbeat's semantic version.
var Version = "0.1.0"

// Commit is the git commit the binary was built from ("" when unknown).
var Commit = ""

// BuildTime is when the binary was built, RFC 3339 ("" when unknown).
var BuildTime = ""
