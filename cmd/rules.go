package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cfgfile"
	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/kibana"

	"github.com/teleportbeat/teleportbeat/internal/rules"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

// DetectionRulesFlag makes `teleportbeat setup` load only the detection
// rules, as --dashboards loads only the dashboards. Plain `setup` loads
// them with everything else.
const DetectionRulesFlag = "detection-rules"

// libbeat's setup flags: any of them set means "only these".
var setupFlags = []string{"dashboards", "pipelines", "index-management", "enable-all-filesets", "force-enable-module-filesets"}

// withDetectionRules adds the detection rules to setup.
func withDetectionRules(setup *cobra.Command, settings instance.Settings) {
	setup.Flags().Bool(DetectionRulesFlag, false, "Load teleportbeat's Teleport detection rules into Kibana Security")
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
			if err := loadDetectionRules(settings, initialized); err != nil {
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
func loadDetectionRules(settings instance.Settings, initialized bool) error {
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
	n, err := rules.Import(&client.Connection, all)
	if err != nil {
		return err
	}
	fmt.Printf("Loaded %d detection rules, disabled: enable them in Kibana under Security → Rules (tag \"Data Source: Teleport\")\n", n)
	return nil
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
