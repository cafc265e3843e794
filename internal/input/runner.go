package input

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/cfgfile"
	"github.com/elastic/beats/v7/libbeat/common/fmtstr"
	"github.com/elastic/beats/v7/libbeat/management/status"
	"github.com/elastic/beats/v7/libbeat/processors"
	"github.com/elastic/beats/v7/libbeat/processors/add_formatted_index"
	"github.com/elastic/beats/v7/libbeat/publisher/pipetool"
	conf "github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
)

// UnitConfig is one Elastic Agent input unit, as internal/agent's
// transform turns it into a beat configuration: the teleportbeat section,
// and where each stream's events go.
type UnitConfig struct {
	// ID is the unit's id (for logs and errors).
	ID           string  `config:"id"`
	Teleportbeat *conf.C `config:"teleportbeat"`
	// AuditStream and SessionStream route the teleport.audit and
	// teleport.session data streams: the index (logs-teleportbeat.audit-<ns>)
	// and the processors Agent adds (data_stream.*, agent.id, ...).
	AuditStream   Stream `config:"audit_stream"`
	SessionStream Stream `config:"session_stream"`
}

// Stream is a data stream's routing.
type Stream struct {
	Index      fmtstr.EventFormatString `config:"index"`
	Processors processors.PluginConfig  `config:"processors"`
}

// Factory creates a input per Elastic Agent input unit; it is the
// cfgfile.RunnerFactory of the beat's reloadable input list.
type Factory struct {
	Log  *logp.Logger
	Info beat.Info
	// Resolve resolves a registry path against path.data.
	Resolve func(string) string
	Stats   *monitoring.Registry

	mu      sync.Mutex
	active  map[string]bool // the units whose inputs run
	claims  claims          // the clusters they read, one unit each
	shared  map[string]*sharedRegistry
	sharedM sync.Mutex // guards shared (opened by the inputs as they start)
}

// sharedRegistry is a registry the running units share, open while one
// of them runs.
type sharedRegistry struct {
	reg  *cursor.Shared
	refs int
}

var _ cfgfile.RunnerFactoryWithStatusReporter = (*Factory)(nil)

func (f *Factory) load(c *conf.C) (UnitConfig, config.Config, error) {
	var u UnitConfig
	if err := c.Unpack(&u); err != nil {
		return u, config.Config{}, fmt.Errorf("teleport input unit: %w", err)
	}
	cfg, err := config.Load(u.Teleportbeat)
	if err != nil {
		return u, cfg, fmt.Errorf("teleport input unit %s: %w", u.ID, err)
	}
	return u, cfg, nil
}

// CheckConfig validates a unit's configuration.
func (f *Factory) CheckConfig(c *conf.C) error {
	_, _, err := f.load(c)
	return err
}

// Create is CreateWithReporter without status reports.
func (f *Factory) Create(p beat.PipelineConnector, c *conf.C) (cfgfile.Runner, error) {
	return f.CreateWithReporter(p, c, nil)
}

// CreateWithReporter returns the input of one unit, not yet started.
func (f *Factory) CreateWithReporter(p beat.PipelineConnector, c *conf.C, rep status.StatusReporter) (cfgfile.Runner, error) {
	u, cfg, err := f.load(c)
	if err != nil {
		return nil, err
	}
	audit, err := u.AuditStream.pipeline(p, f.Info)
	if err != nil {
		return nil, fmt.Errorf("teleport input unit %s: teleport.audit stream: %w", u.ID, err)
	}
	sessions, err := u.SessionStream.pipeline(p, f.Info)
	if err != nil {
		return nil, fmt.Errorf("teleport input unit %s: teleport.session stream: %w", u.ID, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Several units run at once (a Teleport integration per cluster in a
	// policy): they share the registry, each cluster under its key, and
	// their figures are under their cluster's name. A unit replaced by a
	// policy change is stopped before the new one starts.
	if f.active == nil {
		f.active = map[string]bool{}
		f.claims.by = map[string]string{}
	}
	if f.active[u.ID] {
		return nil, fmt.Errorf("teleport input unit %s already runs in this teleportbeat", u.ID)
	}
	f.active[u.ID] = true
	unit := "teleport input unit " + u.ID
	return &Runner{
		factory: f,
		id:      u.ID,
		cfg:     cfg,
		settings: Settings{
			Log:          f.Log.With("unit", u.ID),
			RegistryRoot: f.Resolve(cfg.Registry.Path),
			StoreName:    f.Info.Beat,
			Audit:        audit,
			Sessions:     sessions,
			Stats:        f.Stats,
			Status:       rep,
			PerCluster:   true,
			Claim: func(cluster string) error {
				return f.claims.claim(cluster, unit)
			},
		},
	}, nil
}

func (f *Factory) release(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.active, id)
	f.claims.release("teleport input unit " + id)
}

// openShared is the registry under root the running units share, opened
// by the first.
func (f *Factory) openShared(log *logp.Logger, root string, cfg config.Config) (*cursor.Shared, error) {
	f.sharedM.Lock()
	defer f.sharedM.Unlock()
	if f.shared == nil {
		f.shared = map[string]*sharedRegistry{}
	}
	if s, ok := f.shared[root]; ok {
		s.refs++
		return s.reg, nil
	}
	reg, err := cursor.OpenShared(log, root, cfg.Registry.FilePermissions, f.Info.Beat, time.Now())
	if err != nil {
		return nil, err
	}
	f.shared[root] = &sharedRegistry{reg: reg, refs: 1}
	return reg, nil
}

// closeShared closes the registry under root when its last unit stops.
func (f *Factory) closeShared(log *logp.Logger, root string) {
	f.sharedM.Lock()
	defer f.sharedM.Unlock()
	s, ok := f.shared[root]
	if !ok {
		return
	}
	if s.refs--; s.refs == 0 {
		if err := s.reg.Close(); err != nil {
			log.Warnw("Closing the registry", "error", err)
		}
		delete(f.shared, root)
	}
}

// pipeline routes the events of a stream: the index first, then the
// stream's processors, after the input's own.
func (s Stream) pipeline(p beat.PipelineConnector, info beat.Info) (beat.PipelineConnector, error) {
	procs := processors.NewList(info.Logger)
	if !s.Index.IsEmpty() {
		index, err := fmtstr.NewTimestampFormatString(&s.Index, fmtstr.FieldsForBeat(info.Beat, info.Version))
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		procs.AddProcessor(add_formatted_index.New(index))
	}
	user, err := processors.New(s.Processors, info.Logger)
	if err != nil {
		return nil, fmt.Errorf("processors: %w", err)
	}
	procs.AddProcessors(*user)
	if len(procs.List) == 0 {
		return p, nil
	}
	return pipetool.WithClientConfigEdit(p, func(c beat.ClientConfig) (beat.ClientConfig, error) {
		list := processors.NewList(info.Logger)
		if c.Processing.Processor != nil {
			list.AddProcessor(c.Processing.Processor)
		}
		list.AddProcessors(*procs)
		c.Processing.Processor = list
		return c, nil
	}), nil
}

// Runner runs one unit's input (cfgfile.Runner).
type Runner struct {
	factory  *Factory
	id       string
	cfg      config.Config
	settings Settings

	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs the input in the background.
func (r *Runner) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		defer r.factory.release(r.id)
		s := r.settings
		reg, err := r.factory.openShared(s.Log, s.RegistryRoot, r.cfg)
		if err == nil {
			defer r.factory.closeShared(s.Log, s.RegistryRoot)
			s.Registry = reg
			err = Run(ctx, r.cfg, s)
		}
		if err != nil {
			r.settings.Log.Errorw("The Teleport input stopped", "error", err)
			if r.settings.Status != nil {
				r.settings.Status.UpdateStatus(status.Failed, err.Error())
			}
		}
	}()
}

// Stop stops the input and waits until its position is saved.
func (r *Runner) Stop() {
	if r.cancel == nil {
		r.factory.release(r.id)
		return
	}
	r.cancel()
	<-r.done
}

func (r *Runner) String() string { return "teleport input unit " + r.id }
