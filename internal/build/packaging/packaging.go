// Package packaging builds teleportbeat's release artefacts for Linux: a
// .tar.gz laid out like the Beats' archives, and .deb and .rpm packages
// (built with nfpm, no Docker) that install to the Beats' standard paths
// with a systemd unit.
package packaging

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager

	"github.com/teleportbeat/teleportbeat/internal/build/generate"
)

//go:embed files
var assets embed.FS

// Name is the package and binary name.
const Name = "teleportbeat"

// Standard Beats paths the packages install to.
const (
	HomeDir   = "/usr/share/teleportbeat"
	ConfigDir = "/etc/teleportbeat"
	DataDir   = "/var/lib/teleportbeat"
	LogsDir   = "/var/log/teleportbeat"
	UnitPath  = "/lib/systemd/system/teleportbeat.service"
	// The watch that places teleportbeat into each new Elastic Agent
	// version (internal/agentcomponent, `teleportbeat agent install`).
	AgentPathUnitPath    = "/lib/systemd/system/teleportbeat-agent-component.path"
	AgentServiceUnitPath = "/lib/systemd/system/teleportbeat-agent-component.service"
)

// Options says what to build.
type Options struct {
	Root    string   // the repository root
	Out     string   // where the artefacts go
	Version string   // the package version (semver)
	Arches  []string // GOARCH values: amd64, arm64
	Formats []string // "tar.gz", "deb", "rpm"
	LDFlags string   // passed to go build (version stamping)
	// TrimPath builds with -trimpath, as releases are. Without it the
	// build shares the compile cache of a plain `go build` (tests).
	TrimPath bool
	// MTime is the time stamped on every file (reproducible builds).
	MTime time.Time
}

// Build builds the binaries and the artefacts and returns their paths.
func Build(o Options) ([]string, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.Out, err)
	}
	var out []string
	for _, arch := range o.Arches {
		bin := filepath.Join(o.Out, "bin-linux-"+arch, Name)
		if err := buildBinary(o, arch, bin); err != nil {
			return nil, err
		}
		for _, format := range o.Formats {
			var p string
			var err error
			if format == "tar.gz" {
				p, err = archive(o, arch, bin)
			} else {
				p, err = pkg(o, arch, bin, format)
			}
			if err != nil {
				return nil, fmt.Errorf("%s for linux/%s: %w", format, arch, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func buildBinary(o Options, arch, bin string) error {
	args := []string{"build", "-ldflags", o.LDFlags, "-o", bin}
	if o.TrimPath {
		args = append(args, "-trimpath")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = o.Root
	// Static for every architecture: runs on any Linux whatever its C
	// library, and needs no C cross-compiler.
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the linux/%s binary: %w", arch, err)
	}
	return nil
}

// entry is one file of an artefact.
type entry struct {
	src  string      // file on disk ("" for an embedded asset or a directory)
	data []byte      // embedded content
	dst  string      // path in the artefact
	mode os.FileMode // permissions
	kind string      // nfpm content type (files.TypeFile, TypeConfigNoReplace, ...)
}

// common lists the files every artefact carries, with paths relative to the
// Beats home directory (the archive's root).
func common(o Options, bin string) ([]entry, error) {
	es := []entry{
		{src: bin, dst: Name, mode: 0o755},
		{src: filepath.Join(o.Root, "teleportbeat.yml"), dst: "teleportbeat.yml", mode: 0o600, kind: files.TypeConfigNoReplace},
		{src: filepath.Join(o.Root, "teleportbeat.reference.yml"), dst: "teleportbeat.reference.yml", mode: 0o644, kind: files.TypeConfig},
		{src: filepath.Join(o.Root, "fields.yml"), dst: "fields.yml", mode: 0o644, kind: files.TypeConfig},
		{src: filepath.Join(o.Root, "LICENSE"), dst: "LICENSE", mode: 0o644},
		{src: filepath.Join(o.Root, "NOTICE"), dst: "NOTICE", mode: 0o644},
		{src: filepath.Join(o.Root, "README.md"), dst: "README.md", mode: 0o644},
		// Elastic Agent runs teleportbeat when this file sits next to the
		// binary in its components directory.
		{src: filepath.Join(o.Root, "module", Name+".spec.yml"), dst: Name + ".spec.yml", mode: 0o644},
	}
	err := filepath.WalkDir(filepath.Join(o.Root, "kibana"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(o.Root, p)
		if err != nil {
			return err
		}
		es = append(es, entry{src: p, dst: filepath.ToSlash(rel), mode: 0o644})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the Kibana assets: %w", err)
	}
	return es, nil
}

// archive writes teleportbeat-<version>-linux-<arch>.tar.gz, everything
// under one top directory, as the Beats' archives are.
func archive(o Options, arch, bin string) (string, error) {
	top := fmt.Sprintf("%s-%s-linux-%s", Name, o.Version, archName(arch, "tar.gz"))
	dst := filepath.Join(o.Out, top+".tar.gz")
	es, err := common(o, bin)
	if err != nil {
		return "", err
	}
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for _, e := range es {
		for d := path.Dir(e.dst); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: 0o755, ModTime: o.MTime}); err != nil {
		return "", err
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/" + d + "/", Mode: 0o755, ModTime: o.MTime}); err != nil {
			return "", err
		}
	}
	for _, e := range es {
		data, err := os.ReadFile(e.src)
		if err != nil {
			return "", err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + e.dst, Mode: int64(e.mode), Size: int64(len(data)), ModTime: o.MTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if _, err := tw.Write(data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	return dst, f.Close()
}

// pkg writes the .deb or .rpm.
func pkg(o Options, arch, bin, format string) (string, error) {
	es, err := common(o, bin)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "teleportbeat-pkg")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	asset := func(name string) (string, error) {
		b, err := assets.ReadFile("files/" + name)
		if err != nil {
			return "", err
		}
		p := filepath.Join(tmp, name)
		return p, os.WriteFile(p, b, 0o644)
	}

	var contents files.Contents
	add := func(c *files.Content) { contents = append(contents, c) }
	for _, e := range es {
		dst := HomeDir + "/" + e.dst
		switch {
		case e.dst == Name:
			dst = HomeDir + "/bin/" + Name
		case e.kind == files.TypeConfigNoReplace || e.kind == files.TypeConfig:
			dst = ConfigDir + "/" + e.dst
		}
		kind := e.kind
		if kind == "" {
			kind = files.TypeFile
		}
		info := &files.ContentFileInfo{Mode: e.mode, Owner: "root", Group: "root"}
		if e.dst == "teleportbeat.yml" {
			// It may hold credentials; postinstall gives it to the group
			// the beat runs as (the group does not exist at build time).
			info.Mode = 0o640
		}
		add(&files.Content{Source: e.src, Destination: dst, Type: kind, FileInfo: info})
	}
	for _, s := range []struct{ asset, dst string }{
		{"teleportbeat.sh", "/usr/bin/" + Name},
		{"teleportbeat.service", UnitPath},
		{"teleportbeat-agent-component.path", AgentPathUnitPath},
		{"teleportbeat-agent-component.service", AgentServiceUnitPath},
	} {
		p, err := asset(s.asset)
		if err != nil {
			return "", err
		}
		mode := os.FileMode(0o644)
		if s.dst == "/usr/bin/"+Name {
			mode = 0o755
		}
		add(&files.Content{Source: p, Destination: s.dst, Type: files.TypeFile, FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root"}})
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{ConfigDir, 0o750}, {DataDir, 0o750}, {LogsDir, 0o750}} {
		add(&files.Content{Destination: d.path, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: d.mode, Owner: "root", Group: "root"}})
	}
	var scripts nfpm.Scripts
	for _, s := range []struct {
		asset string
		set   *string
	}{{"preinstall.sh", &scripts.PreInstall}, {"postinstall.sh", &scripts.PostInstall}, {"preremove.sh", &scripts.PreRemove}} {
		if *s.set, err = asset(s.asset); err != nil {
			return "", err
		}
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        Name,
		Arch:        arch,
		Platform:    "linux",
		Version:     o.Version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  "teleportbeat authors <teleportbeat@users.noreply.github.com>",
		Description: "Ships Teleport audit events and session recordings into the Elastic Stack.",
		Vendor:      "teleportbeat",
		Homepage:    "https://github.com/teleportbeat/teleportbeat",
		License:     "Apache-2.0",
		MTime:       o.MTime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  scripts,
			Depends:  []string{},
		},
	})
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(o.Out, fmt.Sprintf("%s-%s-%s.%s", Name, o.Version, archName(arch, format), format))
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := packager.Package(info, f); err != nil {
		return "", err
	}
	return dst, f.Close()
}

// archName is the architecture as each format names it (the Beats' own
// artefacts: x86_64 for archives and rpm, amd64 for deb).
func archName(goarch, format string) string {
	switch {
	case goarch == "amd64" && format != "deb":
		return "x86_64"
	case goarch == "arm64" && format != "deb":
		return "aarch64"
	}
	return goarch
}

// FleetPackage zips the Fleet integration package (module/teleportbeat) as
// Kibana's package upload API takes it: <name>-<version>.zip with
// everything under <name>-<version>/, built as elastic-package builds a
// package: without _dev, and with the `external: ecs` fields resolved.
func FleetPackage(root, out, version string, mtime time.Time) (string, error) {
	src := filepath.Join(root, "module", Name)
	fieldsYML, err := os.ReadFile(filepath.Join(root, "fields.yml"))
	if err != nil {
		return "", err
	}
	top := Name + "-" + version
	dst := filepath.Join(out, top+".zip")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "_dev" {
				return fs.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if filepath.Base(rel) == "ecs.yml" && filepath.Base(filepath.Dir(rel)) == "fields" {
			if data, err = generate.ResolveECS(data, fieldsYML); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: top + "/" + filepath.ToSlash(rel), Method: zip.Deflate, Modified: mtime})
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("zip the Fleet package: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return dst, f.Close()
}
