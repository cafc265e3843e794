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

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
	"github.com/gravitational/teleport/api/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/audit"
	"github.com/teleportbeat/teleportbeat/internal/teleport"
)

// testTeleportCmd is `teleportbeat test teleport`: connect with the
// configured credentials and check what teleportbeat needs, for what the
// configuration uses.
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
			if err := checkClusters(c.Context(), c.OutOrStdout(), cfg, b.Info.Logger); err != nil {
				// Each failed check was printed with its reason, once.
				c.SilenceErrors = true
				return err
			}
			return nil
		},
	}
}

// checkClusters checks every cluster of the configuration, each under a
// line naming its entry when there are several, and fails with the
// problems of each.
func checkClusters(ctx context.Context, w io.Writer, cfg config.Config, log *logp.Logger) error {
	clusters := cfg.Clusters()
	if len(clusters) == 1 && clusters[0].Key() == "" {
		return checkTeleport(ctx, w, clusters[0], log)
	}
	var errs []error
	for i, c := range clusters {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s:\n", c.ClusterLabel())
		if err := checkTeleport(ctx, w, c, log); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Key(), err))
		}
	}
	return errors.Join(errs...)
}

// checker prints one line per check: OK, WARN (works, with a limit of this
// Teleport version) or ERROR, and remembers the first error.
type checker struct {
	w   io.Writer
	err error
}

func (c *checker) line(what, status, detail string) {
	fmt.Fprintf(c.w, "%-30s %s %s\n", what+"...", status, detail)
}

func (c *checker) ok(what, detail string)   { c.line(what, "OK", detail) }
func (c *checker) warn(what, detail string) { c.line(what, "WARN", detail) }

func (c *checker) fail(what string, err error) error {
	c.line(what, "ERROR", err.Error())
	if c.err == nil {
		c.err = fmt.Errorf("%s: %w", what, err)
	}
	return c.err
}

// checkTeleport prints what it checks and fails with the first problem.
func checkTeleport(ctx context.Context, w io.Writer, cfg config.Config, log *logp.Logger) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ck := &checker{w: w}
	tc := cfg.Teleport
	creds, err := teleport.NewCredentials(tc)
	if err != nil {
		return ck.fail("credentials", err)
	}
	ck.ok("credentials", strings.Join(credsFiles(creds), ", "))
	conn := teleport.NewConn(tc, creds, log.Named("teleport"))
	defer conn.Close()

	id, err := conn.CurrentIdentity()
	if err != nil {
		return ck.fail("identity", err)
	}
	ck.ok("identity", fmt.Sprintf("user %s, roles %s, expires %s", id.User, strings.Join(id.Roles, ","), id.NotAfter.UTC().Format(time.RFC3339)))
	if left := time.Until(id.NotAfter); left <= 0 {
		return ck.fail("identity validity", fmt.Errorf("expired at %s; renew it (tctl auth sign, or Machine ID)", id.NotAfter.UTC().Format(time.RFC3339)))
	} else if left < teleport.ExpiryWarning {
		ck.warn("identity validity", fmt.Sprintf("expires in %s", left.Round(time.Second)))
	}

	dctx, cancel := context.WithTimeout(ctx, tc.DialTimeout+5*time.Second)
	defer cancel()
	pong, err := conn.Ping(dctx)
	if err != nil {
		return ck.fail("connect to "+strings.Join(tc.Addr, ","), err)
	}
	ck.ok("connect to "+strings.Join(tc.Addr, ","), fmt.Sprintf("cluster %s, Teleport %s", pong.ClusterName, pong.ServerVersion))
	al, err := conn.AuditLog(dctx)
	if err != nil {
		return ck.fail("audit log", err)
	}

	// The audit search: the newest event of the last day.
	now := time.Now().UTC()
	items, _, err := al.SearchUnstructuredEvents(dctx, now.Add(-24*time.Hour), now, "default", cfg.Audit.EventTypes, 1, types.EventOrderDescending, "")
	switch {
	case err != nil:
		ck.fail("search the audit log", explainDenied(err, "list and read on the event resource"))
	default:
		detail := "no event in the last 24 hours (the role may list events)"
		if len(items) > 0 {
			detail = fmt.Sprintf("newest event %s (%s)", items[0].Time.UTC().Format(time.RFC3339), items[0].Type)
		}
		if al.LegacySearch() {
			detail += "; with SearchEvents, since this Teleport has no GetUnstructuredEvents (13.0+)"
		}
		ck.ok("search the audit log", detail)
	}

	if cfg.Audit.UseExportAPI {
		_, err := exportDays(dctx, al, now)
		switch {
		case err == nil:
			ck.ok("export API (past days)", "available: complete past days are read in bulk")
		case audit.Unsupported(err):
			ck.warn("export API (past days)", "not on this cluster (Teleport 16+ with the Athena backend has it): past days are read with searches")
		default:
			ck.fail("export API (past days)", explainDenied(err, "list and read on the event resource"))
		}
	}

	if cfg.Sessions.Enabled {
		// A session that does not exist: NotFound means the role may read
		// recordings; AccessDenied that it may not.
		serr := streamProbe(dctx, al)
		switch {
		case serr != nil:
			ck.fail("read session recordings", explainDenied(serr, "list and read on the session resource to ship session recordings"))
		case al.LegacySessions():
			ck.ok("read session recordings", "with StreamSessionEvents, since this Teleport has no StreamUnstructuredSessionEvents (14.0+)")
		default:
			ck.ok("read session recordings", "the role may read recordings (asked for one that does not exist; Teleport answered not found)")
		}
	}

	if cfg.Lock.Enabled || cfg.Respond.Enabled { // the failed-login lock, or the response endpoint
		clt, err := conn.Client(dctx)
		if err == nil {
			// An invalid lock (no name, no target): Teleport checks the
			// role's permission first, then refuses the lock itself. So
			// BadParameter says the role may create locks, and nothing is
			// created.
			err = clt.UpsertLock(dctx, &types.LockV2{})
		}
		switch {
		case err == nil, trace.IsBadParameter(err):
			ck.ok("create locks", "the role may create and update locks (checked with an invalid lock Teleport refused; none was created)")
		default:
			ck.fail("create locks", explainDenied(err, "create and update on the lock resource (teleportbeat configure --lock adds them)"))
		}
	}
	return ck.err
}

// exportDays lists yesterday's export chunks.
func exportDays(ctx context.Context, al *teleport.AuditLog, now time.Time) (int, error) {
	day := now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	s := al.GetEventExportChunks(ctx, &auditlogpb.GetEventExportChunksRequest{Date: timestamppb.New(day)})
	defer s.Done()
	n := 0
	for s.Next() {
		n++
	}
	return n, s.Done()
}

// streamProbe streams a session that does not exist.
func streamProbe(ctx context.Context, al *teleport.AuditLog) error {
	evs, errs := al.StreamUnstructuredSessionEvents(ctx, "00000000-0000-4000-8000-000000000000", 0)
	var err error
	select {
	case err = <-errs:
	case <-evs:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if trace.IsNotFound(err) {
		return nil
	}
	return err
}

// explainDenied says what the role lacks when Teleport denies access.
func explainDenied(err error, needs string) error {
	if trace.IsAccessDenied(err) {
		return fmt.Errorf("%w; the role needs %s", err, needs)
	}
	return err
}

func credsFiles(c teleport.Credentials) []string {
	if c == nil {
		return nil
	}
	return c.Files()
}
