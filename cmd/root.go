// Package cmd builds teleportbeat's command line: libbeat's root command
// (run, setup, export, test, keystore) and teleportbeat's own subcommands
// and version.
package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cmd"
	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	libversion "github.com/elastic/beats/v7/libbeat/version"

	"github.com/teleportbeat/teleportbeat/beater"
	"github.com/teleportbeat/teleportbeat/internal/agent"
	"github.com/teleportbeat/teleportbeat/internal/version"

	// Registers fields.yml, the source of the index template.
	_ "github.com/teleportbeat/teleportbeat/include"
	// Registers the http output (Fluentd, Logstash's http input).
	_ "github.com/teleportbeat/teleportbeat/internal/httpout"
	"github.com/teleportbeat/teleportbeat/internal/outguard"
)

// Name is the beat's name: its config file, index prefix and registry.
const Name = "teleportbeat"

// Settings are the libbeat settings of the beat.
//
// The beat reports libbeat's version to libbeat (index template and data
// stream names, Elasticsearch feature checks): libbeat assumes a beat
// version is an Elastic Stack version. teleportbeat's own release version
// is shown by `teleportbeat version`.
func Settings() instance.Settings {
	return instance.Settings{
		Name:          Name,
		IndexPrefix:   Name,
		Version:       libversion.GetDefaultVersion(),
		HasDashboards: true,
	}
}

// RootCmd returns the root command.
func RootCmd() *cmd.BeatsRootCmd {
	settings := Settings()
	// management.enabled: true runs under Elastic Agent (V2 protocol).
	agent.Register()
	// An event Elasticsearch (or a proxy before it) refuses alone as too
	// large is kept and truncated, not dropped (internal/outguard).
	outguard.Install()
	root := cmd.GenRootCmdWithSettings(beater.New, settings)
	root.TestCmd.AddCommand(testTeleportCmd(settings))
	root.AddCommand(configureCmd())
	root.RemoveCommand(root.VersionCmd)
	root.VersionCmd = versionCmd()
	root.AddCommand(root.VersionCmd)
	for _, c := range root.ExportCmd.Commands() {
		if c.Name() == "config" {
			root.ExportCmd.RemoveCommand(c)
		}
	}
	root.ExportCmd.AddCommand(exportConfigCmd(settings))
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show current version info",
		Run: func(c *cobra.Command, _ []string) {
			commit, built := version.Commit, version.BuildTime
			if commit == "" {
				commit = "unknown"
			}
			if built == "" {
				built = "unknown"
			}
			fmt.Fprintf(c.OutOrStdout(), "teleportbeat version %s (%s/%s), commit %s, built %s, libbeat %s, %s\n",
				version.Version, runtime.GOOS, runtime.GOARCH, commit, built, libversion.GetDefaultVersion(), runtime.Version())
		},
	}
}
