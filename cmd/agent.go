package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/teleportbeat/teleportbeat/internal/agentcomponent"
	"github.com/teleportbeat/teleportbeat/internal/version"
	"github.com/teleportbeat/teleportbeat/module"
)

// agentOptions are the flags of `agent install` and `test agent`.
type agentOptions struct {
	tops      []string
	uninstall bool
	wait      time.Duration
	watch     bool
	newOnly   bool
	proc      string
	systemd   agentcomponent.Systemd
}

func (o *agentOptions) flags(c *cobra.Command) {
	c.Flags().StringArrayVar(&o.tops, "agent-path", nil, "the agent's top directory (repeatable; default: "+fmt.Sprint(agentcomponent.DefaultTops)+")")
	c.Flags().StringVar(&o.proc, "proc", "/proc", "where the processes are listed")
	_ = c.Flags().MarkHidden("proc")
}

func (o *agentOptions) homes() ([]agentcomponent.Home, error) {
	tops := o.tops
	if len(tops) == 0 {
		tops = agentcomponent.DefaultTops
	}
	var all []agentcomponent.Home
	for _, t := range tops {
		hs, err := agentcomponent.Homes(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		all = append(all, hs...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no Elastic Agent is installed in %v (no data/elastic-agent-* directory); give its directory with --agent-path", tops)
	}
	return all, nil
}

// agentCmd is `teleportbeat agent install`: teleportbeat as a component of
// the Elastic Agent of this host, in every installed agent version, and
// in each new one an upgrade unpacks (the packages' path unit).
func agentCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "agent",
		Short: "teleportbeat as a component of the Elastic Agent of this host",
	}
	var o agentOptions
	install := &cobra.Command{
		Use:   "install",
		Short: "Place teleportbeat and its spec into every installed Elastic Agent version's components directory (--uninstall takes them out)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			c.SilenceUsage = true
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
			if o.systemd.Binary == "" {
				o.systemd = agentcomponent.DefaultSystemd(bin)
			}
			return runAgentInstall(c.Context(), c.OutOrStdout(), o, agentcomponent.Source{Binary: bin, Spec: module.ComponentSpec})
		},
	}
	o.flags(install)
	install.Flags().BoolVar(&o.uninstall, "uninstall", false, "take teleportbeat out of every agent version (the spec first, then the binary) and stop watching for new ones")
	install.Flags().DurationVar(&o.wait, "wait", 0, "how long to wait for the components directory of an agent version still being unpacked")
	install.Flags().BoolVar(&o.newOnly, "new-versions-only", false, "place only into the active agent version and newer ones, leaving the version an upgrade left to its watcher, which removes it (what the path unit runs)")
	install.Flags().BoolVar(&o.watch, "watch", true, "turn on the packages' path unit, which places teleportbeat into each agent version an upgrade unpacks")
	root.AddCommand(install)
	return root
}

func runAgentInstall(ctx context.Context, w io.Writer, o agentOptions, src agentcomponent.Source) error {
	homes, err := o.homes()
	if err != nil {
		return err
	}
	var failed []error
	if o.uninstall {
		if o.watch {
			if err := o.systemd.Disable(); err != nil {
				failed = append(failed, fmt.Errorf("stopping the watch: %w", err))
			}
		}
		for _, h := range homes {
			out, err := agentcomponent.Remove(h)
			if err != nil {
				failed = append(failed, err)
				fmt.Fprintf(w, "%s: ERROR %v\n", h, err)
				continue
			}
			fmt.Fprintf(w, "%s: %s\n", h, out)
		}
		if len(failed) == 0 {
			fmt.Fprintf(w, "Elastic Agent reads its components when it starts: %s\n", agentcomponent.RestartCommand)
		}
		return errors.Join(failed...)
	}
	restart := false
	for _, h := range homes {
		if o.newOnly && agentcomponent.Previous(h, homes) {
			fmt.Fprintf(w, "%s: %s\n", h, agentcomponent.LeftAlone)
			continue
		}
		out, err := agentcomponent.Place(ctx, h, src, o.wait)
		if err != nil {
			failed = append(failed, err)
			fmt.Fprintf(w, "%s: ERROR %v\n", h, err)
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", h, out)
		if out == agentcomponent.Gone {
			continue
		}
		for _, f := range agentcomponent.Check(ctx, h, version.Version, o.proc) {
			fmt.Fprintf(w, "  %-17s %s %s\n", f.Check+"...", f.Status, f.Detail)
			if f.Status == agentcomponent.Error {
				failed = append(failed, fmt.Errorf("%s: %s: %s", h.Dir, f.Check, f.Detail))
			}
			restart = restart || strings.Contains(f.Detail, agentcomponent.RestartCommand)
		}
	}
	if o.watch {
		switch err := o.systemd.Enable(o.tops); {
		case errors.Is(err, agentcomponent.ErrNoWatch):
			fmt.Fprintf(w, "WARN %v\n", err)
		case err != nil:
			failed = append(failed, fmt.Errorf("turning on the watch for agent upgrades: %w", err))
		default:
			fmt.Fprintf(w, "Watching for Elastic Agent upgrades (%s): teleportbeat is placed into each new version as it is unpacked\n", agentcomponent.PathUnit)
		}
	}
	if restart {
		fmt.Fprintf(w, "Elastic Agent reads its components when it starts, and it started before teleportbeat was placed: %s\n", agentcomponent.RestartCommand)
	}
	return errors.Join(failed...)
}

// testAgentCmd is `teleportbeat test agent`: can the Elastic Agent of this
// host start teleportbeat, in every installed version?
func testAgentCmd() *cobra.Command {
	var o agentOptions
	c := &cobra.Command{
		Use:   "agent",
		Short: "Check that the Elastic Agent of this host can start teleportbeat",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			c.SilenceUsage = true
			homes, err := o.homes()
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			var failed []error
			for _, h := range homes {
				fmt.Fprintf(w, "%s\n", h)
				for _, f := range agentcomponent.Check(c.Context(), h, version.Version, o.proc) {
					fmt.Fprintf(w, "  %-17s %s %s\n", f.Check+"...", f.Status, f.Detail)
					if f.Status == agentcomponent.Error {
						failed = append(failed, fmt.Errorf("%s: %s: %s", h.Dir, f.Check, f.Detail))
					}
				}
			}
			return errors.Join(failed...)
		},
	}
	o.flags(c)
	return c
}
