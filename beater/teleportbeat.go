// Package beater is teleportbeat's libbeat Beater. Standalone it runs one
// input (internal/input) from teleportbeat.yml; under Elastic Agent
// (management.enabled) it runs one per input unit the agent sends, and
// reloads them when the policy changes.
package beater

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/cfgfile"
	"github.com/elastic/beats/v7/libbeat/management"
	conf "github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/paths"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/input"
)

// Teleportbeat is the Beater.
type Teleportbeat struct {
	cfg     config.Config
	managed bool
	log     *logp.Logger
	paths   *paths.Path

	stopOnce sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

// Options change how the beater is created.
type Options struct {
	// Warnings, when set, also receives the configuration's warnings (as
	// `test config` prints them; they are logged in any case).
	Warnings io.Writer
}

// New is teleportbeat's beat.Creator.
func New(b *beat.Beat, section *conf.C) (beat.Beater, error) {
	return NewWith(Options{})(b, section)
}

// NewWith returns a beat.Creator with options.
func NewWith(o Options) beat.Creator {
	return func(b *beat.Beat, section *conf.C) (beat.Beater, error) { return newBeater(o, b, section) }
}

func newBeater(o Options, b *beat.Beat, section *conf.C) (beat.Beater, error) {
	tb := &Teleportbeat{log: b.Info.Logger.Named("teleportbeat"), paths: b.Paths}
	if tb.paths == nil {
		tb.paths = paths.Paths
	}
	// Under Elastic Agent the configuration comes with the units.
	tb.managed = b.Manager != nil && b.Manager.Enabled()
	if !tb.managed {
		cfg, err := config.Load(section)
		if err != nil {
			return nil, err
		}
		for _, w := range cfg.Warnings {
			tb.log.Warn(w)
			if o.Warnings != nil {
				fmt.Fprintln(o.Warnings, "WARNING:", w)
			}
		}
		tb.cfg = cfg
		if b.InSetupCmd {
			setupPipelines(b)
		}
	}
	tb.ctx, tb.cancel = context.WithCancel(context.Background())
	return tb, nil
}

// Stop asks Run to return.
func (tb *Teleportbeat) Stop() {
	tb.stopOnce.Do(func() {
		tb.log.Info("Stopping teleportbeat")
		tb.cancel()
	})
}

// Run ships until Stop.
func (tb *Teleportbeat) Run(b *beat.Beat) error {
	if tb.managed {
		return tb.runManaged(b)
	}
	applyMemoryLimit(tb.cfg, os.Getenv("GOMEMLIMIT"), tb.log)
	if err := ensurePipelineOnConnect(b, tb.log); err != nil {
		return err
	}
	pipeline, err := withOutputPipeline(b, tb.log)
	if err != nil {
		return err
	}
	return input.RunClusters(tb.ctx, tb.cfg, input.Settings{
		Log:          tb.log,
		RegistryRoot: tb.paths.Resolve(paths.Data, tb.cfg.Registry.Path),
		StoreName:    b.Info.Beat,
		Audit:        pipeline,
		Sessions:     pipeline,
		Stats:        b.Monitoring.StatsRegistry(),
		Status:       b.Manager,
	})
}

// runManaged hands the agent's input units to a runner list, as Filebeat
// and Metricbeat do: the manager reloads it on every policy change without
// restarting the process.
func (tb *Teleportbeat) runManaged(b *beat.Beat) error {
	factory := &input.Factory{
		Log:     tb.log,
		Info:    b.Info,
		Resolve: func(p string) string { return tb.paths.Resolve(paths.Data, p) },
		Stats:   b.Monitoring.StatsRegistry(),
	}
	units := cfgfile.NewRunnerList(management.DebugK, factory, b.Publisher, tb.log)
	b.Registry.MustRegisterInput(units)
	if err := b.Manager.Start(); err != nil {
		return fmt.Errorf("start the Elastic Agent connection: %w", err)
	}
	tb.log.Info("Managed by Elastic Agent: waiting for its teleport input units")
	<-tb.ctx.Done()
	units.Stop()
	b.Manager.Stop()
	return nil
}
