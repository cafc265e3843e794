// Package module holds teleportbeat's Elastic Agent pieces: the Fleet
// integration package (teleportbeat/) and the component spec
// (teleportbeat.spec.yml), which the binary carries so that
// `teleportbeat agent install` places the spec of its own version.
package module

import _ "embed"

// ComponentSpec is teleportbeat.spec.yml, the spec Elastic Agent reads
// from its components directory to run teleportbeat.
//
//go:embed teleportbeat.spec.yml
var ComponentSpec []byte
