//go:build mage

// Build targets of teleportbeat. Run them with `go tool mage <target>`
// (mage is pinned as a Go tool in go.mod; nothing to install).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/teleportbeat/teleportbeat/internal/build/generate"
	"github.com/teleportbeat/teleportbeat/internal/build/packaging"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

// Default is the target run by a plain `go tool mage`.
var Default = Build

func init() {
	// The checksum database has no entries for many github.com/elastic
	// modules; fetch them without it (go.sum still pins every hash).
	if os.Getenv("GONOSUMDB") == "" {
		os.Setenv("GONOSUMDB", "github.com/elastic")
	}
}

func run(name string, args ...string) error {
	fmt.Println(">", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ldflags stamps the commit and build time into the binary.
func ldflags() string {
	const pkg = "github.com/teleportbeat/teleportbeat/internal/version"
	commit := output("git", "rev-parse", "HEAD")
	if commit != "" && output("git", "status", "--porcelain") != "" {
		commit += "-dirty"
	}
	return fmt.Sprintf("-s -w -X %s.Commit=%s -X %s.BuildTime=%s", pkg, commit, pkg, time.Now().UTC().Format(time.RFC3339))
}

// Build builds the teleportbeat binary in the repository root, as the
// packages have it: without cgo (one static binary for every Linux; the
// beat needs no C library, and it keeps about 40 MiB of the dynamic
// symbol table out of memory).
func Build() error {
	fmt.Println("> CGO_ENABLED=0 go build -trimpath -ldflags", ldflags(), "-o teleportbeat .")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags(), "-o", "teleportbeat", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// Update regenerates fields.yml, include/fields.go, teleportbeat.yml and
// teleportbeat.reference.yml.
func Update() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := generate.Write(root); err != nil {
		return err
	}
	fmt.Println("generated files updated")
	return nil
}

// Check fails when a generated file is stale or Go files are not gofmt'ed.
func Check() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	stale, err := generate.Stale(root)
	if err != nil {
		return err
	}
	if len(stale) > 0 {
		return fmt.Errorf("stale generated files (run `go tool mage update` and commit): %s", strings.Join(stale, ", "))
	}
	if out := output("gofmt", "-l", "."); out != "" {
		return fmt.Errorf("files not formatted with gofmt:\n%s", out)
	}
	return nil
}

// Test runs every test: unit tests and the end-to-end tests that build and
// run the binary (what .ci/run runs).
//
// Without cgo, as the binary is built: the tests' compile cache then
// serves the binaries the end-to-end, package and bench tests build.
// -parallel 8: the fault tests that run in parallel mostly wait (outages,
// throttling, slow pages), two at a time left the cores idle.
func Test() error {
	mg.Deps(Check)
	os.Setenv("CGO_ENABLED", "0")
	return run("go", "test", "-count=1", "-parallel", "8", "-timeout", "25m", "./...")
}

// Package builds the release artefacts under build/distributions: for
// linux/amd64 and linux/arm64, a .tar.gz laid out like the Beats' archives
// and .deb and .rpm packages with a systemd unit (nfpm, no Docker), and the
// Fleet integration package as Kibana uploads it. PLATFORMS
// (e.g. "amd64") and FORMATS (e.g. "deb") narrow it down.
func Package() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	arches, formats := []string{"amd64", "arm64"}, []string{"tar.gz", "deb", "rpm"}
	if v := os.Getenv("PLATFORMS"); v != "" {
		arches = strings.Fields(strings.ReplaceAll(v, ",", " "))
	}
	if v := os.Getenv("FORMATS"); v != "" {
		formats = strings.Fields(strings.ReplaceAll(v, ",", " "))
	}
	mtime := time.Now().UTC()
	if ts := output("git", "log", "-1", "--format=%ct"); ts != "" {
		var sec int64
		if _, err := fmt.Sscan(ts, &sec); err == nil {
			mtime = time.Unix(sec, 0).UTC() // reproducible: the commit's time
		}
	}
	arts, err := packaging.Build(packaging.Options{
		Root: root, Out: "build/distributions", Version: version.Version,
		Arches: arches, Formats: formats, LDFlags: ldflags(), TrimPath: true, MTime: mtime,
	})
	if err != nil {
		return err
	}
	fleet, err := packaging.FleetPackage(root, "build/distributions", fleetVersion(root), mtime)
	if err != nil {
		return err
	}
	for _, a := range append(arts, fleet) {
		fmt.Println("built", a)
	}
	return nil
}

// fleetVersion is the Fleet package's version (its manifest's).
func fleetVersion(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "module", "teleportbeat", "manifest.yml"))
	if err != nil {
		return "0.0.0"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "0.0.0"
}

// Info prints the toolchain in use.
func Info() {
	fmt.Println(runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
