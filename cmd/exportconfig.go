package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v2"

	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/beats/v7/libbeat/common/cli"
)

// redacted replaces a secret in `export config`.
const redacted = "[redacted]"

// secretKeys are the settings whose values are secrets wherever they
// appear. libbeat's own `export config` prints them as they are, and its
// logging mask lacks api_key.
var secretKeys = map[string]bool{
	"password": true, "passphrase": true, "key_passphrase": true, "pass": true,
	"api_key": true, "token": true, "secret": true, "secret_token": true,
	"authorization": true, "proxy-authorization": true,
}

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
			redact(cfg)
			out, err := yaml.Marshal(cfg)
			if err != nil {
				return fmt.Errorf("convert the configuration to YAML: %w", err)
			}
			_, err = os.Stdout.Write(out)
			return err
		}),
	}
}

// redact replaces secrets in a configuration tree, in place: the values of
// secretKeys, and private keys given inline (ssl.key may hold the PEM
// itself instead of a path).
func redact(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if secretKeys[strings.ToLower(k)] || inlineKey(val) {
				t[k] = redacted
				continue
			}
			redact(val)
		}
	case []any:
		for i, val := range t {
			if inlineKey(val) {
				t[i] = redacted
				continue
			}
			redact(val)
		}
	}
}

// inlineKey reports whether a value is a PEM private key itself.
func inlineKey(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "PRIVATE KEY")
}
