package cmd

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cfgfile"
	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/kibana"

	tbconfig "github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/rules"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

// DetectionRulesFlag makes `teleportbeat setup` load only the detection
// rules, as --dashboards loads only the dashboards. Plain `setup` loads
// them with everything else.
const DetectionRulesFlag = "detection-rules"

// ForceRulesFlag makes setup reset every installed rule's content to the
// shipped version's.
const ForceRulesFlag = "force"

// libbeat's setup flags: any of them set means "only these".
var setupFlags = []string{"dashboards", "pipelines", "index-management", "enable-all-filesets", "force-enable-module-filesets"}

// withDetectionRules adds the detection rules to setup.
func withDetectionRules(setup *cobra.Command, settings instance.Settings) {
	setup.Flags().Bool(DetectionRulesFlag, false, "Load teleportbeat's Teleport detection rules into Kibana Security")
	setup.Flags().Bool(ForceRulesFlag, false, "With the detection rules: reset every installed rule to this version's content (the analysts' edits to the rules go; enabled, exceptions and actions stay)")
	setup.Long += " * Detection rules for Kibana Security (Teleport threats).\n"
	libbeatRun := setup.Run
	setup.Run = func(c *cobra.Command, args []string) {
		only, _ := c.Flags().GetBool(DetectionRulesFlag)
		others := false
		for _, f := range setupFlags {
			if v, err := c.Flags().GetBool(f); err == nil && v {
				others = true
			}
		}
		initialized := false
		if !only || others {
			libbeatRun(c, args) // exits the process on failure
			initialized = true
		}
		if only || !others {
			force, _ := c.Flags().GetBool(ForceRulesFlag)
			if err := loadDetectionRules(settings, initialized, force); err != nil {
				fmt.Fprintf(os.Stderr, "Exiting: %v\n", err)
				os.Exit(1)
			}
		}
	}
}

// loadDetectionRules imports the rules into the Kibana of setup.kibana,
// with the credentials libbeat's dashboard loader would use (those of
// output.elasticsearch when setup.kibana has none). libbeat can be
// initialized once per process: after its own setup ran, the
// configuration is read again with its loader (its keystore resolver
// stays in place).
func loadDetectionRules(settings instance.Settings, initialized, force bool) error {
	if !initialized {
		b, err := instance.NewBeat(settings.Name, settings.IndexPrefix, settings.Version, settings.ElasticLicensed, settings.Initialize)
		if err != nil {
			return fmt.Errorf("initialize: %w", err)
		}
		if err := b.InitWithSettings(settings); err != nil {
			return err
		}
	}
	cfg, err := cfgfile.Load("", settings.ConfigOverrides)
	if err != nil {
		return err
	}
	kcfg, err := kibanaConfig(cfg)
	if err != nil {
		return err
	}
	fmt.Println("Loading detection rules (Kibana must be running and reachable)")
	commit, built := version.Build()
	client, err := kibana.NewKibanaClient(kcfg, settings.Name, settings.Version, commit, built)
	if err != nil {
		return fmt.Errorf("connect to Kibana to load the detection rules: %w", err)
	}
	all, err := rules.All()
	if err != nil {
		return err
	}
	history, err := rules.LoadHistory()
	if err != nil {
		return err
	}
	out, err := rules.Install(&client.Connection, client.Version.String(), all, history, force)
	fmt.Print(rulesSummary(out))
	if err != nil {
		return err
	}
	return armRules(cfg, &client.Connection, all, out.Installed)
}

// armRules makes the Kibana connector to the response endpoint, when
// teleportbeat.respond.kibana_connector is set, and gives the rules that
// have one their ready lock action, snoozed.
func armRules(cfg *config.C, conn rules.Kibana, all []rules.Rule, installed []string) error {
	var section *config.C
	if cfg.HasField(tbconfig.Namespace) {
		s, err := cfg.Child(tbconfig.Namespace, -1)
		if err != nil {
			return err
		}
		section = s
	}
	kc, err := tbconfig.LoadKibanaConnector(section)
	if err != nil {
		return err
	}
	if kc == nil {
		fmt.Println("Ready lock actions: not added (set teleportbeat.respond.kibana_connector to have setup make the Kibana connector to the response endpoint)")
		return nil
	}
	c := rules.Connector{URL: kc.URL}
	if c.ClientCert, err = os.ReadFile(kc.SSL.Certificate); err != nil {
		return fmt.Errorf("teleportbeat.%s.ssl.certificate: %w", tbconfig.KibanaConnectorKey, err)
	}
	if c.Key, err = os.ReadFile(kc.SSL.Key); err != nil {
		return fmt.Errorf("teleportbeat.%s.ssl.key: %w", tbconfig.KibanaConnectorKey, err)
	}
	for _, ca := range kc.SSL.CertificateAuthorities {
		b, err := tbconfig.ReadCA(ca)
		if err != nil {
			return fmt.Errorf("teleportbeat.%s.ssl.certificate_authorities: %w", tbconfig.KibanaConnectorKey, err)
		}
		c.CA = append(append(c.CA, b...), '\n') // PEM files need not end with a newline
	}
	created, err := rules.EnsureConnector(conn, c)
	if err != nil {
		return err
	}
	if created {
		fmt.Printf("Kibana connector %q (%s) created: it posts to %s with the client certificate %s\n", rules.ConnectorName, rules.ConnectorID, kc.URL, kc.SSL.Certificate)
	} else {
		fmt.Printf("Kibana connector %q (%s) updated\n", rules.ConnectorName, rules.ConnectorID)
	}
	armed, err := rules.Arm(conn, all, installed, created)
	if len(armed.Armed) > 0 {
		fmt.Printf("Ready lock actions added, snoozed: %d (%s). In Security → Rules, unsnooze a rule's notifications to have its alerts lock their users\n", len(armed.Armed), strings.Join(armed.Armed, "; "))
	}
	if len(armed.Had) > 0 {
		fmt.Printf("Ready lock actions already there: %d\n", len(armed.Had))
	}
	if len(armed.LeftOut) > 0 {
		fmt.Printf("Ready lock actions not added (the rule has actions of its own, or its ready action was removed; add an action on the connector by hand to have it lock): %s\n", strings.Join(armed.LeftOut, "; "))
	}
	return err
}

// rulesSummary says what setup did with the detection rules.
func rulesSummary(o rules.Outcome) string {
	var b strings.Builder
	say := func(names []string, what string) {
		if len(names) > 0 {
			fmt.Fprintf(&b, "Detection rules %s: %d (%s)\n", what, len(names), strings.Join(names, "; "))
		}
	}
	say(o.Installed, "installed, disabled (enable them in Kibana under Security → Rules, tag \"Data Source: Teleport\")")
	say(o.Upgraded, "upgraded to this version")
	say(o.Reset, "reset to this version (--force)")
	if len(o.UpToDate) > 0 {
		fmt.Fprintf(&b, "Detection rules already at this version: %d\n", len(o.UpToDate))
	}
	say(o.Newer, "left alone, newer than this teleportbeat's")
	for _, name := range slices.Sorted(maps.Keys(o.Kept)) {
		fmt.Fprintf(&b, "Kept your changes to %q: %s\n", name, strings.Join(o.Kept[name], ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(o.Conflicts)) {
		fmt.Fprintf(&b, "Review %q: this version changed %s too; yours were kept (teleportbeat setup --detection-rules --force takes this version's)\n", name, strings.Join(o.Conflicts[name], ", "))
	}
	return b.String()
}

// kibanaConfig is setup.kibana with output.elasticsearch's credentials
// where it has none, as libbeat's instance.InitKibanaConfig makes it.
func kibanaConfig(cfg *config.C) (*config.C, error) {
	k := config.NewConfig()
	if cfg.HasField("setup") {
		if sub, err := cfg.Child("setup.kibana", -1); err == nil {
			k = sub
		}
	}
	es, err := cfg.Child("output.elasticsearch", -1)
	if err != nil || !es.Enabled() {
		return k, nil
	}
	for _, key := range []string{"username", "password", "api_key"} {
		if v, err := es.String(key, -1); err == nil && v != "" && !k.HasField(key) {
			if err := k.SetString(key, -1, v); err != nil {
				return nil, err
			}
		}
	}
	return k, nil
}
