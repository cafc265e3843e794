// Package cmd builds teleportbeat's command line: libbeat's root command
// (run, setup, export, test, keystore) and teleportbeat's own subcommands
// and version.
package cmd

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cmd"
	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/beats/v7/libbeat/cmd/test"
	libversion "github.com/elastic/beats/v7/libbeat/version"

	"github.com/teleportbeat/teleportbeat/beater"
	"github.com/teleportbeat/teleportbeat/internal/agent"
	"github.com/teleportbeat/teleportbeat/internal/version"

	// Registers fields.yml, the source of the index template.
	_ "github.com/teleportbeat/teleportbeat/include"
	// Registers the http output (Fluentd, Logstash's http input).
	_ "github.com/teleportbeat/teleportbeat/internal/httpout"
	"github.com/teleportbeat/teleportbeat/internal/oversize"
)

// Name is the beat's name: its config file, index prefix and registry.
const Name = "teleportbeat"

// Settings are the libbeat settings of the beat.
//
// The beat's version is teleportbeat's own: it is agent.version in every
// document, and names the index template and data stream
// (teleportbeat-<version>), so that an upgrade of teleportbeat installs the
// template of its fields. libbeat's only other use of it, refusing an
// Elasticsearch older than the beat, does not apply to a 0.x or 1.x beat.
func Settings() instance.Settings {
	return instance.Settings{
		Name:          Name,
		IndexPrefix:   Name,
		Version:       version.Version,
		HasDashboards: true,
		// Audit events are few and urgent: send a batch within a second;
		// GeoIP through teleportbeat's ingest pipeline (cmd/defaults.go).
		ConfigOverrides: defaults(),
	}
}

// RootCmd returns the root command.
func RootCmd() *cmd.BeatsRootCmd {
	settings := Settings()
	// management.enabled: true runs under Elastic Agent (V2 protocol).
	agent.Register()
	// An event Elasticsearch (or a proxy before it) refuses alone as too
	// large is kept and truncated, not dropped (internal/oversize).
	oversize.Install()
	root := cmd.GenRootCmdWithSettings(beater.New, settings)
	root.TestCmd.AddCommand(testTeleportCmd(settings))
	// `test config` prints the configuration's warnings (a misspelt event
	// type) too, not only the log.
	for _, c := range root.TestCmd.Commands() {
		if c.Name() == "config" {
			root.TestCmd.RemoveCommand(c)
		}
	}
	root.TestCmd.AddCommand(test.GenTestConfigCmd(settings, beater.NewWith(beater.Options{Warnings: os.Stdout})))
	root.AddCommand(configureCmd())
	root.AddCommand(deadLetterCmd(settings))
	root.AddCommand(agentCmd())
	root.TestCmd.AddCommand(testAgentCmd())
	withDetectionRules(root.SetupCmd, settings)
	root.RemoveCommand(root.VersionCmd)
	root.VersionCmd = versionCmd()
	root.AddCommand(root.VersionCmd)
	for _, c := range root.ExportCmd.Commands() {
		if c.Name() == "config" {
			root.ExportCmd.RemoveCommand(c)
		}
	}
	root.ExportCmd.AddCommand(exportConfigCmd(settings))
	// Offline, `export template|ilm-policy|index-pattern` assume
	// Elasticsearch runs the beat's version; teleportbeat's is its own, so
	// they assume the Elastic Stack version of the libbeat it is built
	// with instead (--es.version still overrides).
	for _, c := range root.ExportCmd.Commands() {
		if f := c.Flags().Lookup("es.version"); f != nil {
			f.DefValue = libversion.GetDefaultVersion()
			_ = f.Value.Set(f.DefValue)
		}
	}
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show current version info",
		Run: func(c *cobra.Command, _ []string) {
			commit, built := version.Build()
			fmt.Fprintf(c.OutOrStdout(), "teleportbeat version %s (%s/%s), commit %s, built %s, libbeat %s, %s\n",
				version.Version, runtime.GOOS, runtime.GOARCH, commit, built, libversion.GetDefaultVersion(), runtime.Version())
		},
	}
}
