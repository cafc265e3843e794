//go:build mage

// Build targets of teleportbeat. Run them with `go tool mage <target>`
// (mage is pinned as a Go tool in go.mod; nothing to install).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/teleportbeat/teleportbeat/internal/generate"
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

// Build builds the teleportbeat binary in the repository root.
func Build() error {
	return run("go", "build", "-trimpath", "-ldflags", ldflags(), "-o", "teleportbeat", ".")
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
func Test() error {
	mg.Deps(Check)
	return run("go", "test", "-count=1", "-timeout", "25m", "./...")
}

// Info prints the toolchain in use.
func Info() {
	fmt.Println(runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
