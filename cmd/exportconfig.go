package cmd

import (
	"fmt"
	"net/url"
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
// secretKeys and of every key with "auth" in its name (cloud.auth,
// Authorization, proxy_auth), every value under "headers" (X-Api-Key,
// X-Auth-Token and the like are credentials as often as not), the user and
// password in URLs (proxy_url, hosts), and private keys given inline
// (ssl.key may hold the PEM itself instead of a path).
func redact(v any) {
	redactIn(v, false)
}

func redactIn(v any, headers bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			lk := strings.ToLower(k)
			if headers || secretKeys[lk] || strings.Contains(lk, "auth") || inlineKey(val) {
				t[k] = redacted
				continue
			}
			if s, ok := val.(string); ok {
				t[k] = redactURL(s)
				continue
			}
			redactIn(val, lk == "headers")
		}
	case []any:
		for i, val := range t {
			if headers || inlineKey(val) {
				t[i] = redacted
				continue
			}
			if s, ok := val.(string); ok {
				t[i] = redactURL(s)
				continue
			}
			redactIn(val, false)
		}
	}
}

// redactURL hides the password, and the user, of a URL with userinfo
// (https://user:pass@host).
func redactURL(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User(redacted)
	return strings.Replace(u.String(), url.PathEscape(redacted), redacted, 1)
}

// inlineKey reports whether a value is a PEM private key itself.
func inlineKey(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "PRIVATE KEY")
}
