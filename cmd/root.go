// Package cmd builds teleportbeat's command line: libbeat's root command
// (run, setup, export, test, keystore, version) and teleportbeat's own
// subcommands.
package cmd

import (
	"github.com/elastic/beats/v7/libbeat/cmd"
	"github.com/elastic/beats/v7/libbeat/cmd/instance"

	"github.com/teleportbeat/teleportbeat/beater"
	"github.com/teleportbeat/teleportbeat/internal/version"

	// Registers fields.yml, the source of the index template.
	_ "github.com/teleportbeat/teleportbeat/include"
)

// Name is the beat's name: its config file, index prefix and registry.
const Name = "teleportbeat"

// Settings are the libbeat settings of the beat.
func Settings() instance.Settings {
	return instance.Settings{
		Name:          Name,
		IndexPrefix:   Name,
		Version:       version.Version,
		HasDashboards: true,
	}
}

// RootCmd returns the root command.
func RootCmd() *cmd.BeatsRootCmd {
	return cmd.GenRootCmdWithSettings(beater.New, Settings())
}
