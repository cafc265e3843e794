package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/teleportbeat/teleportbeat/internal/certs"
	"github.com/teleportbeat/teleportbeat/internal/configure"
)

// configureCmd is `teleportbeat configure <dir> [teleport-addr]`.
func configureCmd() *cobra.Command {
	var o configure.Options
	var keyType string
	c := &cobra.Command{
		Use:   "configure <output-dir> [teleport-addr...]",
		Short: "Write the Teleport role, the Logstash mutual TLS and a starter teleportbeat.yml",
		Long: `Writes into <output-dir>: the Teleport role and user for teleportbeat and the tctl
commands to create them and sign an identity; a CA, server and client
certificates for Logstash's beats input with mutual TLS (keys in PKCS#8, mode
0600); a Logstash pipeline for that input; and a teleportbeat.yml wired to all
of it. With several Teleport addresses (one per cluster), a tctl script and an
identity per cluster, and a teleportbeat.yml that reads them all
(teleportbeat.clusters). Existing files are not overwritten without --force.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			c.SilenceUsage = true
			o.Dir = args[0]
			if len(args) > 1 {
				o.TeleportAddr, o.MoreClusters = args[1], args[2:]
			}
			o.KeyType = certs.KeyType(keyType)
			files, err := configure.Write(o)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			rv, _ := configure.RoleVersion(o.TeleportVersion)
			if o.TeleportVersion == "" {
				fmt.Fprintf(w, "The role is version %s, which every Teleport from 11 to 18 takes (give --teleport-version for the newest your cluster takes).\n", rv)
			} else {
				fmt.Fprintf(w, "The role is version %s, for Teleport %s.\n", rv, o.TeleportVersion)
			}
			fmt.Fprintf(w, "Wrote to %s:\n", o.Dir)
			for _, f := range files {
				fmt.Fprintf(w, "  %-28s %#o  %s\n", f.Name, f.Mode, f.What)
			}
			script := "tctl.sh"
			if len(o.MoreClusters) > 0 {
				script = "each tctl-<host>.sh where tctl reaches that cluster"
			}
			fmt.Fprintf(w, "\nNext: run %s, install the Logstash pipeline and its certificates,\nthen: teleportbeat test config -c %s/teleportbeat.yml && teleportbeat run -c %s/teleportbeat.yml\n", script, o.Dir, o.Dir)
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&o.Force, "force", false, "overwrite existing files")
	f.BoolVar(&o.Lock, "lock", false, "let the role create locks (for teleportbeat.lock)")
	f.StringSliceVar(&o.LogstashHost, "logstash-host", []string{"localhost", "127.0.0.1"}, "DNS names and IPs of the Logstash host, for its certificate")
	f.IntVar(&o.LogstashPort, "logstash-port", 5044, "port of Logstash's beats input")
	f.StringVar(&keyType, "key-type", "rsa", "key algorithm: rsa or ecdsa")
	f.IntVar(&o.RSABits, "rsa-bits", 4096, "RSA key size")
	f.DurationVar(&o.TTL, "ttl", 10*365*24*time.Hour, "validity of the certificates")
	f.StringVar(&o.User, "user", "teleportbeat", "name of the Teleport user and role")
	f.StringVar(&o.TeleportVersion, "teleport-version", "", "the cluster's Teleport version (13, 16.4.6...), for the role's version: v7 from 14 on, v6 before; unset, v6, which Teleport 11 to 18 all take")
	return c
}
