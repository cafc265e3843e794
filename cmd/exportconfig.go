package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v2"

	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/beats/v7/libbeat/common/cli"

	"github.com/teleportbeat/teleportbeat/internal/redact"
)

// redacted replaces a secret in `export config`.
const redacted = redact.Mask

// exportConfigCmd is libbeat's `export config` with secrets redacted: the
// output is meant to be pasted into bug reports.
func exportConfigCmd(settings instance.Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Export current config to stdout, secrets redacted",
		Run: cli.RunWith(func(*cobra.Command, []string) error {
			settings.DisableConfigResolver = true
			b, err := instance.NewInitializedBeat(settings)
			if err != nil {
				return fmt.Errorf("initialize the export command: %w", err)
			}
			var cfg map[string]any
			if err := b.RawConfig.Unpack(&cfg); err != nil {
				return fmt.Errorf("unpack the configuration: %w", err)
			}
			redactConfig(cfg)
			out, err := yaml.Marshal(cfg)
			if err != nil {
				return fmt.Errorf("convert the configuration to YAML: %w", err)
			}
			_, err = os.Stdout.Write(out)
			return err
		}),
	}
}

// redactConfig replaces the secrets of a configuration tree, in place
// (internal/redact: the rules the logs follow too). libbeat's own `export
// config` prints them as they are.
func redactConfig(v any) { redact.Config(v) }
