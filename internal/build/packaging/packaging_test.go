package packaging

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/agentcomponent"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestPackages builds the linux/amd64 archive, deb and rpm (the mage
// target also builds arm64), inspects them, and installs the deb into a
// scratch root (dpkg-deb -x, what dpkg -x does) to run the binary from it.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	out := t.TempDir()
	arts, err := Build(Options{
		Root: root, Out: out, Version: "0.1.0", Arches: []string{"amd64"}, Formats: []string{"tar.gz", "deb", "rpm"},
		LDFlags: "-s -w -X github.com/teleportbeat/teleportbeat/internal/version.Commit=packagetestcommit",
		MTime:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		filepath.Join(out, "teleportbeat-0.1.0-linux-x86_64.tar.gz"),
		filepath.Join(out, "teleportbeat-0.1.0-amd64.deb"),
		filepath.Join(out, "teleportbeat-0.1.0-x86_64.rpm"),
	}, arts)

	t.Run("archive", func(t *testing.T) {
		f, err := os.Open(arts[0])
		require.NoError(t, err)
		defer f.Close()
		gz, err := gzip.NewReader(f)
		require.NoError(t, err)
		tr := tar.NewReader(gz)
		modes := map[string]int64{}
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(h.Name, "teleportbeat-0.1.0-linux-x86_64/"), h.Name)
			modes[strings.TrimPrefix(h.Name, "teleportbeat-0.1.0-linux-x86_64/")] = h.Mode
		}
		for name, mode := range map[string]int64{
			"teleportbeat": 0o755, "teleportbeat.yml": 0o600, "teleportbeat.reference.yml": 0o644, "fields.yml": 0o644,
			"LICENSE": 0o644, "NOTICE": 0o644, "README.md": 0o644, "kibana/": 0o755, "teleportbeat.spec.yml": 0o644,
		} {
			got, ok := modes[name]
			require.True(t, ok, "%s in the archive", name)
			require.Equal(t, mode, got, name)
		}
		var dashboards int
		for name := range modes {
			if strings.HasPrefix(name, "kibana/7/dashboard/") && strings.HasSuffix(name, ".json") {
				dashboards++
			}
		}
		require.Positive(t, dashboards, "the Kibana dashboards")

		// As README says: unpack, edit teleportbeat.yml, and from that
		// directory `./teleportbeat test config && ./teleportbeat setup`,
		// with the recording Elasticsearch and Kibana for the real ones.
		dir := t.TempDir()
		run(t, "tar", "-xzf", arts[0], "-C", dir)
		home := filepath.Join(dir, "teleportbeat-0.1.0-linux-x86_64")
		es, kb := estest.New(), estest.NewKibana()
		esSrv, kbSrv := es.Server(), kb.Server()
		defer esSrv.Close()
		defer kbSrv.Close()
		cfgPath := filepath.Join(home, "teleportbeat.yml")
		shipped, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		cfg := string(shipped)
		for old, new := range map[string]string{
			`hosts: ["localhost:9200"]`:  fmt.Sprintf("hosts: [%q]", esSrv.URL),
			"/etc/teleportbeat/identity": identity(t),
		} {
			require.Contains(t, cfg, old, "the shipped teleportbeat.yml")
			cfg = strings.ReplaceAll(cfg, old, new)
		}
		cfg += fmt.Sprintf("setup.kibana.host: %q\n", kbSrv.URL)
		require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
		for _, args := range [][]string{{"test", "config"}, {"setup"}} {
			cmd := exec.Command("./teleportbeat", args...)
			cmd.Dir = home
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "./teleportbeat %v in the unpacked archive:\n%s", args, out)
			if args[0] == "setup" {
				require.Contains(t, string(out), "Index setup finished")
				require.Contains(t, string(out), "Loaded dashboards")
			}
		}
		dashboardsLoaded := 0
		for _, o := range kb.Objects() {
			if o["type"] == "dashboard" {
				dashboardsLoaded++
			}
		}
		require.Equal(t, 3, dashboardsLoaded)
		require.Positive(t, len(es.Requests()), "the index template went to Elasticsearch")
	})

	t.Run("deb", func(t *testing.T) {
		if _, err := exec.LookPath("dpkg-deb"); err != nil {
			t.Skip("dpkg-deb is not installed")
		}
		list := run(t, "dpkg-deb", "-c", arts[1])
		for _, want := range []string{
			"-rwxr-xr-x root/root", "./usr/share/teleportbeat/bin/teleportbeat",
			"-rw-r----- root/root", "./etc/teleportbeat/teleportbeat.yml",
			"./etc/teleportbeat/teleportbeat.reference.yml", "./etc/teleportbeat/fields.yml",
			"./usr/share/teleportbeat/kibana/7/dashboard/", "./usr/share/teleportbeat/LICENSE", "./usr/share/teleportbeat/NOTICE",
			"./lib/systemd/system/teleportbeat.service", "./usr/bin/teleportbeat",
			"./lib/systemd/system/teleportbeat-agent-component.path", "./lib/systemd/system/teleportbeat-agent-component.service",
			"drwxr-x--- root/root         0 2026-01-01 00:00 ./var/lib/teleportbeat/",
			"drwxr-x--- root/root         0 2026-01-01 00:00 ./var/log/teleportbeat/",
		} {
			require.Contains(t, list, want)
		}
		ctrl := t.TempDir()
		run(t, "dpkg-deb", "-e", arts[1], ctrl)
		conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
		require.NoError(t, err)
		require.Equal(t, "/etc/teleportbeat/fields.yml\n/etc/teleportbeat/teleportbeat.reference.yml\n/etc/teleportbeat/teleportbeat.yml\n", sortLines(string(conffiles)), "config files are marked as such")
		for _, s := range []string{"preinst", "postinst", "prerm"} {
			b, err := os.ReadFile(filepath.Join(ctrl, s))
			require.NoError(t, err, s)
			require.True(t, strings.HasPrefix(string(b), "#!/bin/sh"), s)
		}
		preinst, _ := os.ReadFile(filepath.Join(ctrl, "preinst"))
		require.Contains(t, string(preinst), "useradd --system", "a dedicated user")
		postinst, _ := os.ReadFile(filepath.Join(ctrl, "postinst"))
		require.Contains(t, string(postinst), "/usr/share/teleportbeat/bin/teleportbeat agent install", "an upgrade places the new version into Elastic Agent where it was")
		prerm, _ := os.ReadFile(filepath.Join(ctrl, "prerm"))
		require.Contains(t, string(prerm), "agent install --uninstall", "a removal takes it out of Elastic Agent")
		control := run(t, "dpkg-deb", "-f", arts[1])
		require.Contains(t, control, "Package: teleportbeat")
		require.Contains(t, control, "Architecture: amd64")
		require.Contains(t, control, "Version: 0.1.0")

		// Install into a scratch root and run it from there.
		sys := t.TempDir()
		run(t, "dpkg-deb", "-x", arts[1], sys)
		unit, err := os.ReadFile(filepath.Join(sys, "lib/systemd/system/teleportbeat.service"))
		require.NoError(t, err)
		for _, want := range []string{"Restart=always", "User=teleportbeat", "Group=teleportbeat",
			"ExecStart=/usr/share/teleportbeat/bin/teleportbeat --environment systemd",
			"--path.config /etc/teleportbeat --path.data /var/lib/teleportbeat --path.logs /var/log/teleportbeat",
			"WantedBy=multi-user.target"} {
			require.Contains(t, string(unit), want)
		}
		bin := filepath.Join(sys, "usr/share/teleportbeat/bin/teleportbeat")
		version := run(t, bin, "version")
		require.Contains(t, version, "teleportbeat version 0.1.0")
		require.Contains(t, version, "commit packagetestcommit", "the commit is stamped at build time")
		exe, err := elf.Open(bin)
		require.NoError(t, err)
		for _, p := range exe.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary is static: it runs on any Linux whatever its C library")
		}
		require.NoError(t, exe.Close())

		// The shipped config, with an identity file where it expects one.
		idFile := identity(t)
		cfgOut := run(t, bin, "test", "config",
			"-c", filepath.Join(sys, "etc/teleportbeat/teleportbeat.yml"),
			"--path.home", filepath.Join(sys, "usr/share/teleportbeat"), "--path.config", filepath.Join(sys, "etc/teleportbeat"),
			"--path.data", filepath.Join(sys, "var/lib/teleportbeat"), "--path.logs", filepath.Join(sys, "var/log/teleportbeat"),
			"-E", "teleportbeat.teleport.identity_file="+idFile)
		require.Contains(t, cfgOut, "Config OK")
	})

	t.Run("rpm", func(t *testing.T) {
		b, err := os.ReadFile(arts[2])
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(b, []byte{0xed, 0xab, 0xee, 0xdb}), "an RPM lead")
		// The header (uncompressed) names every file and directory.
		for _, want := range []string{"teleportbeat.service", "teleportbeat-agent-component.path", "/lib/systemd/system/", "/etc/teleportbeat/", "/usr/share/teleportbeat/bin/",
			"teleportbeat.reference.yml", "/var/lib/teleportbeat", "useradd --system", "Apache-2.0", "x86_64"} {
			require.True(t, bytes.Contains(b, []byte(want)), "%q in the rpm header", want)
		}
	})
}

// identity writes an identity file issued by a Teleport double.
func identity(t *testing.T) string {
	t.Helper()
	tp, err := teleporttest.New(teleporttest.Config{})
	require.NoError(t, err)
	t.Cleanup(tp.Stop)
	id, err := tp.NewIdentity(time.Hour)
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity")
	require.NoError(t, id.WriteIdentityFile(idFile))
	return idFile
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return string(out)
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestFleetPackage zips the Fleet package as Kibana's upload API takes it.
func TestFleetPackage(t *testing.T) {
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	p, err := FleetPackage(root, t.TempDir(), "0.1.0", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, "teleportbeat-0.1.0.zip", filepath.Base(p))
	zr, err := zip.OpenReader(p)
	require.NoError(t, err)
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		require.True(t, strings.HasPrefix(f.Name, "teleportbeat-0.1.0/"), f.Name)
		names = append(names, strings.TrimPrefix(f.Name, "teleportbeat-0.1.0/"))
	}
	for _, want := range []string{"manifest.yml", "changelog.yml", "docs/README.md",
		"data_stream/audit/manifest.yml", "data_stream/audit/agent/stream/stream.yml.hbs", "data_stream/audit/fields/fields.yml",
		"data_stream/session/manifest.yml", "data_stream/session/fields/ecs.yml"} {
		require.Contains(t, names, want)
	}
}

// TestAgentComponentUnits: the path unit watches the data directory of
// every agent install `teleportbeat agent install` looks in, and starts
// the service, which runs the packaged binary with the arguments the
// drop-ins for other agent paths repeat.
func TestAgentComponentUnits(t *testing.T) {
	path, err := assets.ReadFile("files/teleportbeat-agent-component.path")
	require.NoError(t, err)
	var watched []string
	for _, line := range strings.Split(string(path), "\n") {
		if v, ok := strings.CutPrefix(line, "PathChanged="); ok {
			watched = append(watched, v)
		}
	}
	var want []string
	for _, top := range agentcomponent.DefaultTops {
		want = append(want, filepath.Join(top, "data"))
	}
	require.Equal(t, want, watched)
	require.Contains(t, string(path), "Unit="+agentcomponent.ServiceUnit)
	require.Equal(t, agentcomponent.PathUnit, filepath.Base(AgentPathUnitPath))
	require.Equal(t, agentcomponent.ServiceUnit, filepath.Base(AgentServiceUnitPath))

	svc, err := assets.ReadFile("files/teleportbeat-agent-component.service")
	require.NoError(t, err)
	bin := HomeDir + "/bin/" + Name
	require.Contains(t, string(svc), "\nType=oneshot\n")
	require.Contains(t, string(svc), "\nExecStart="+bin+" agent install --watch=false --wait 2m --new-versions-only\n")
	_, dropIn := agentcomponent.DefaultSystemd(bin).DropInContents([]string{"/srv/agent"})
	require.Contains(t, dropIn, "\nExecStart="+bin+" agent install --watch=false --wait 2m --new-versions-only --agent-path /srv/agent\n", "the drop-in runs what the unit runs, for another path")
}
