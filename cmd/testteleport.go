package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gravitational/trace"
	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/gravitational/teleport/api/types"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// testTeleportCmd is `teleportbeat test teleport`: connect with the
// configured credentials and check what teleportbeat needs.
func testTeleportCmd(settings instance.Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "teleport",
		Short: "Test the connection to Teleport and the permissions teleportbeat needs",
		RunE: func(c *cobra.Command, _ []string) error {
			c.SilenceUsage = true
			b, err := instance.NewInitializedBeat(settings)
			if err != nil {
				return fmt.Errorf("initializing teleportbeat: %w", err)
			}
			section, err := b.BeatConfig()
			if err != nil {
				return err
			}
			cfg, err := config.Load(section)
			if err != nil {
				return err
			}
			return checkTeleport(c.Context(), c.OutOrStdout(), cfg.Teleport, b.Info.Logger)
		},
	}
}

// checkTeleport prints what it checks and fails with the first problem.
func checkTeleport(ctx context.Context, w io.Writer, cfg config.Teleport, log *logp.Logger) error {
	if ctx == nil {
		ctx = context.Background()
	}
	step := func(what string, err error, detail string) error {
		if err != nil {
			fmt.Fprintf(w, "%-28s ERROR %v\n", what+"...", err)
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(w, "%-28s OK %s\n", what+"...", detail)
		return nil
	}
	creds, err := teleport.NewCredentials(cfg)
	if err := step("credentials", err, strings.Join(credsFiles(creds), ", ")); err != nil {
		return err
	}
	conn := teleport.NewConn(cfg, creds, log.Named("teleport"))
	defer conn.Close()

	id, err := conn.CurrentIdentity()
	if err := step("identity", err, fmt.Sprintf("user %s, roles %s, expires %s", id.User, strings.Join(id.Roles, ","), id.NotAfter.UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	if left := time.Until(id.NotAfter); left <= 0 {
		return step("identity validity", fmt.Errorf("expired at %s; renew it (tctl auth sign, or Machine ID)", id.NotAfter.UTC().Format(time.RFC3339)), "")
	} else if left < teleport.ExpiryWarning {
		fmt.Fprintf(w, "%-28s WARN expires in %s\n", "identity validity...", left.Round(time.Second))
	}

	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+5*time.Second)
	defer cancel()
	pong, err := conn.Ping(dctx)
	if err := step("connect to "+strings.Join(cfg.Addr, ","), err, fmt.Sprintf("cluster %s, Teleport %s", pong.ClusterName, pong.ServerVersion)); err != nil {
		return err
	}
	clt, err := conn.Client(dctx)
	if err != nil {
		return step("client", err, "")
	}
	now := time.Now().UTC()
	items, _, err := clt.SearchUnstructuredEvents(dctx, now.Add(-24*time.Hour), now, "default", nil, 1, types.EventOrderDescending, "")
	if err := step("list audit events", err, fmt.Sprintf("(%d in the last 24h page)", len(items))); err != nil {
		return err
	}
	// A session that does not exist: NotFound means the role may read
	// sessions; AccessDenied that it may not.
	evs, errs := clt.StreamUnstructuredSessionEvents(dctx, "00000000-0000-4000-8000-000000000000", 0)
	var serr error
	select {
	case serr = <-errs:
	case _, ok := <-evs:
		if !ok {
			serr = nil
		}
	case <-dctx.Done():
		serr = dctx.Err()
	}
	if serr != nil && trace.IsNotFound(serr) {
		serr = nil
	}
	if serr != nil && trace.IsAccessDenied(serr) {
		serr = errors.Join(serr, errors.New("the role needs read and list on the session resource to ship session recordings"))
	}
	return step("read session recordings", serr, "")
}

func credsFiles(c teleport.Credentials) []string {
	if c == nil {
		return nil
	}
	return c.Files()
}
