// Package config holds teleportbeat's configuration: the teleportbeat.*
// section of teleportbeat.yml, its defaults and its validation. Errors name
// the key (teleportbeat.audit.batch_size, ...) and the problem.
package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/elastic/beats/v7/libbeat/common/cfgtype"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	conf "github.com/elastic/elastic-agent-libs/config"
)

// Namespace is the configuration section of the beat.
const Namespace = "teleportbeat"

// MaxBatchSize is the largest page Teleport serves (lib/defaults
// EventsMaxIterationLimit).
const MaxBatchSize = 10000

// Config is the teleportbeat section.
type Config struct {
	Teleport Teleport `config:"teleport"`
	Audit    Audit    `config:"audit"`
	Registry Registry `config:"registry"`
	Sessions Sessions `config:"sessions"`
	Lock     Lock     `config:"lock"`
	Respond  Respond  `config:"respond"`
	// ProgressInterval is how often progress and lag are logged (0: never).
	ProgressInterval time.Duration `config:"progress_interval"`
	// MemoryLimit is a soft limit on the Go runtime's memory (GOMEMLIMIT):
	// the collector works harder as the heap nears it. 0: none.
	MemoryLimit cfgtype.ByteSize `config:"memory_limit"`
	// MemoryLimitSet says memory_limit was given: the default yields to a
	// GOMEMLIMIT environment variable, a setting does not.
	MemoryLimitSet bool `config:",ignore"`

	// Warnings are what Load found questionable but not wrong (an event
	// type it does not know): the beat logs them, `test config` prints them.
	Warnings []string `config:",ignore"`

	// clusters are the entries of teleportbeat.clusters (clusters.go),
	// each a whole configuration; key is an entry's place in the file.
	clusters []Config
	key      string

	clock func() time.Time // time.Now when nil (tests set it)
}

// DefaultMemoryLimit is memory_limit's default. Measured with the
// benchmark (bench/RESULTS.md, 2026-12-03): without a limit the heap of a
// backfill grows to twice what it holds live before the collector runs,
// and peak anonymous memory was about 2x Filebeat's in the same run; at
// 40 MiB it was 1.3x, peak RSS below Filebeat's, for about 5-10% more CPU
// per event. The live heap (15-21 MB in the benchmark) stays well below
// it; above it the collector runs more often, never using more than half
// the CPU (Go's soft limit), and memory grows as needed.
const DefaultMemoryLimit = 40 << 20

// minMemoryLimit is the least memory_limit: teleportbeat's heap holds about
// 20 MiB that live as long as the process (libbeat's and Teleport's type
// registries, the output queue).
const minMemoryLimit = 32 << 20

// Teleport configures the connection to the Teleport cluster.
type Teleport struct {
	// Addr lists Proxy or Auth Service addresses, host:port.
	Addr []string `config:"addr"`
	// IdentityFile is an identity file from `tctl auth sign` or Machine ID.
	IdentityFile string `config:"identity_file"`
	// SSL is a TLS key pair and CA from `tctl auth sign --format=tls`.
	SSL SSL `config:"ssl"`
	// ProxySSL are the CAs of the Proxy's web certificate, when it is not
	// from a public CA.
	ProxySSL ProxySSL `config:"proxy_ssl"`
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration `config:"dial_timeout"`
	// Backoff bounds the wait between retries when Teleport fails.
	Backoff Backoff `config:"backoff"`
	// ReloadInterval is how often the credential files are checked for
	// renewal (0: never).
	ReloadInterval time.Duration `config:"reload_interval"`
}

// SSL is the TLS client key pair and the CAs to trust, in the same key
// names as libbeat's outputs.
type SSL struct {
	CertificateAuthorities []string `config:"certificate_authorities"`
	Certificate            string   `config:"certificate"`
	Key                    string   `config:"key"`
}

// ProxySSL configures the trust in the Proxy's web certificate.
type ProxySSL struct {
	// CertificateAuthorities are PEM files of the CAs that sign the
	// Proxy's web certificate (a private CA; public ones are trusted).
	CertificateAuthorities []string `config:"certificate_authorities"`
}

// Backoff is a capped exponential backoff.
type Backoff struct {
	Init time.Duration `config:"init"`
	Max  time.Duration `config:"max"`
}

// Audit configures how the audit log is read.
type Audit struct {
	// StartTime is where reading starts on the very first run (RFC 3339;
	// default: the time of that first run).
	StartTime string `config:"start_time"`
	// BatchSize is the page size asked of Teleport.
	BatchSize int `config:"batch_size"`
	// PollInterval is the wait between searches once caught up and the
	// log is quiet; PollIntervalMin the wait after a search that found new
	// events (it doubles with each search that finds none).
	PollInterval    time.Duration `config:"poll_interval"`
	PollIntervalMin time.Duration `config:"poll_interval_min"`
	// EventTypes, when set, is the list of event types to read (filtered by
	// Teleport).
	EventTypes []string `config:"event_types"`
	// ExcludeEventTypes lists event types to drop.
	ExcludeEventTypes []string `config:"exclude_event_types"`
	// Window bounds one search's time range.
	Window time.Duration `config:"window"`
	// SafetyMargin keeps the head's read window this far behind now (the
	// sweeps of LateEvents catch what becomes visible later).
	SafetyMargin time.Duration `config:"safety_margin"`
	// LateEvents configures the sweeps that catch events that become
	// visible in Teleport after their time.
	LateEvents LateEvents `config:"late_events"`
	// Prefetch is the number of pages read ahead of the publisher.
	Prefetch int `config:"prefetch"`
	// BackfillConcurrency is how many complete past windows are read at
	// once during a backfill or a catch-up.
	BackfillConcurrency int `config:"backfill_concurrency"`
	// UseExportAPI reads complete past days with Teleport's export API
	// where the cluster offers it.
	UseExportAPI bool `config:"use_export_api"`

	startTime time.Time
}

// LateEvents configures the sweeps of the recent past that catch events
// that become visible in Teleport after the reader passed their time.
type LateEvents struct {
	// MaxDelay is how long after its time an event may become visible in
	// Teleport and still be shipped (0: no sweeps).
	MaxDelay time.Duration `config:"max_delay"`
	// Sweeps are the ages of the earlier sweeps (each below MaxDelay),
	// which catch events a little late sooner; [0] for none.
	Sweeps []time.Duration `config:"sweeps"`
	// MaxTracked bounds how many recently shipped events are remembered
	// (about 16 bytes each).
	MaxTracked int `config:"max_tracked"`
	// Recheck is how long after its time every event is read once more,
	// to send what became visible later than MaxDelay (0: no recheck).
	// The shipped events are recorded on disk for it (8 bytes each).
	Recheck time.Duration `config:"recheck_after"`
}

// Ages are the sweep ages, ascending, ending with MaxDelay (none when
// MaxDelay is 0).
func (l LateEvents) Ages() []time.Duration {
	if l.MaxDelay <= 0 {
		return nil
	}
	var ages []time.Duration
	for _, a := range l.Sweeps {
		if a > 0 && a < l.MaxDelay && !slices.Contains(ages, a) {
			ages = append(ages, a)
		}
	}
	slices.Sort(ages)
	return append(ages, l.MaxDelay)
}

// Sessions configures the shipping of session recordings.
type Sessions struct {
	// Enabled ships the events of every uploaded session recording.
	Enabled bool `config:"enabled"`
	// Concurrency bounds the sessions streamed at once.
	Concurrency int `config:"concurrency"`
	// ExcludeEventTypes are session event types not shipped (terminal
	// output, "print", by default, as Teleport's event handler does).
	ExcludeEventTypes []string `config:"exclude_event_types"`
	// MissingTimeout is how long after its upload a recording that cannot
	// be found is retried before it is given up.
	MissingTimeout time.Duration `config:"missing_timeout"`
	// MissingRetry is the wait between attempts at such a recording.
	MissingRetry time.Duration `config:"missing_retry"`
}

// Lock configures locking users after repeated failed logins.
type Lock struct {
	Enabled        bool          `config:"enabled"`
	FailedAttempts int           `config:"failed_attempts"`
	Period         time.Duration `config:"period"`
	// LockFor is the lock's duration (0: until an administrator removes it).
	LockFor time.Duration `config:"lock_for"`
}

// Registry configures where the audit position is kept.
type Registry struct {
	// Path is the registry directory, relative to path.data.
	Path string `config:"path"`
	// Flush is the longest a newly acknowledged position waits before it
	// is written (0: written on every acknowledgement).
	Flush time.Duration `config:"flush"`
	// FilePermissions of the registry files.
	FilePermissions os.FileMode `config:"file_permissions"`
	// RecoveryHorizon is how far before the registry's last write reading
	// starts again when the registry and its backup cannot be read and no
	// start_time is set.
	RecoveryHorizon time.Duration `config:"recovery_horizon"`
}

// Default returns the configuration before the user's settings apply.
func Default() Config {
	return Config{
		Teleport: Teleport{
			DialTimeout: 15 * time.Second,
			// A recovered cluster is noticed within backoff.max: a few
			// seconds, at the cost of one search per reader that often
			// while it is down.
			Backoff:        Backoff{Init: time.Second, Max: 5 * time.Second},
			ReloadInterval: 10 * time.Second,
		},
		MemoryLimit: DefaultMemoryLimit,
		Audit: Audit{
			BatchSize:       500,
			PollInterval:    5 * time.Second,
			PollIntervalMin: 500 * time.Millisecond,
			Window:          24 * time.Hour,
			SafetyMargin:    0,
			LateEvents: LateEvents{
				MaxDelay:   15 * time.Minute,
				Sweeps:     []time.Duration{time.Minute},
				MaxTracked: 1_000_000,
				Recheck:    4 * time.Hour,
			},
			Prefetch:            2,
			BackfillConcurrency: 8,
			UseExportAPI:        true,
		},
		Registry: Registry{
			Path:            "registry",
			Flush:           0,
			FilePermissions: 0o600,
			RecoveryHorizon: 24 * time.Hour,
		},
		Sessions: Sessions{
			Concurrency:       5,
			ExcludeEventTypes: []string{"print"},
			MissingTimeout:    48 * time.Hour,
			MissingRetry:      time.Minute,
		},
		Lock:             Lock{FailedAttempts: 3, Period: time.Minute},
		Respond:          defaultRespond(),
		ProgressInterval: 30 * time.Second,
	}
}

// Start returns the parsed teleportbeat.audit.start_time, zero when unset.
func (a *Audit) Start() time.Time { return a.startTime }

// Load reads and validates the teleportbeat section. Unknown keys are
// errors: a misspelt key would otherwise be silently ignored.
func Load(section *conf.C) (Config, error) {
	cfg := Default()
	if section == nil {
		section = conf.NewConfig()
	}
	if err := CheckKeys(withoutClusters(section), cfg, Namespace); err != nil {
		return cfg, err
	}
	if err := section.Unpack(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", Namespace, err)
	}
	cfg.MemoryLimitSet = section.HasField("memory_limit")
	if listed, err := cfg.loadClusters(section); listed || err != nil {
		// The entries were checked each with what they take from here.
		return cfg, err
	}
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func key(path string) string { return Namespace + "." + path }

// withoutClusters is section without teleportbeat.clusters, whose entries
// are checked each on its own (loadClusters).
func withoutClusters(section *conf.C) *conf.C {
	if !section.HasField("clusters") {
		return section
	}
	c := conf.NewConfig()
	if err := c.Merge(section); err != nil {
		return section
	}
	_, _ = c.Remove("clusters", -1)
	return c
}

// futureTolerance is how far in the future start_time may be (clocks
// differ a little).
const futureTolerance = time.Minute

// now is the clock start_time is checked against.
func (c *Config) now() time.Time {
	if c.clock != nil {
		return c.clock()
	}
	return time.Now()
}

// normalizeAddr accepts host:port, and a Proxy's URL as users copy it from
// a browser (https://teleport.example.com, port 443 unless given).
func normalizeAddr(a string) (string, error) {
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%q is not a host:port address; write it as host:port, for example teleport.example.com:443", a)
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("%q: Teleport is reached over TLS only; write it as host:port, for example %s:443", a, u.Hostname())
		}
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("%q: a Teleport address has no path; write it as host:port, for example %s", a, net.JoinHostPort(u.Hostname(), portOr(u.Port(), "443")))
		}
		return net.JoinHostPort(u.Hostname(), portOr(u.Port(), "443")), nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("%q is not a host:port address; write it as host:port, for example teleport.example.com:443 (a Proxy) or auth.example.com:3025 (an Auth Service)", a)
	}
	return a, nil
}

// checkPEMCerts checks that path holds at least one PEM certificate.
func checkPEMCerts(pathOrPEM string) error {
	b, err := ReadCA(pathOrPEM)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		if IsInlinePEM(pathOrPEM) {
			return errors.New("the PEM given inline holds no certificate")
		}
		return fmt.Errorf("%s holds no PEM certificate", pathOrPEM)
	}
	return nil
}

// IsInlinePEM reports whether a certificate authority is given as the PEM
// text itself, as libbeat's ssl settings take it, rather than a path.
func IsInlinePEM(s string) bool { return strings.Contains(s, "-----BEGIN ") }

// ReadCA reads a certificate authority given as a path or inline. Errors
// name the file, never the PEM text.
func ReadCA(pathOrPEM string) ([]byte, error) {
	if IsInlinePEM(pathOrPEM) {
		return []byte(pathOrPEM), nil
	}
	b, err := os.ReadFile(pathOrPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", pathOrPEM, err)
	}
	return b, nil
}

func portOr(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

// check validates values and files, reporting every problem found. (It is
// not named Validate: go-ucfg would call that during Unpack and wrap its
// errors.)
func (c *Config) check() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key(path), fmt.Sprintf(format, args...)))
	}
	c.checkTeleport(add, func(e ...error) { errs = append(errs, e...) })
	c.checkAudit(add)
	c.checkSessionsAndLock(add)
	c.checkRespond(add)
	if c.ProgressInterval < 0 {
		add("progress_interval", "must not be negative, got %s", c.ProgressInterval)
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < minMemoryLimit {
		add("memory_limit", "must be 0 (no limit) or at least 32MiB, got %d bytes: below that the collector runs all the time", int64(c.MemoryLimit))
	}
	c.Registry.check(add)
	return errors.Join(errs...)
}

// adder records an error at a teleportbeat.* key.
type adder func(path, format string, args ...any)

// checkTeleport checks and normalises the connection settings; the
// credential errors (validateCredentials words its own) go to addErrs.
func (c *Config) checkTeleport(add adder, addErrs func(...error)) {
	t := &c.Teleport
	if len(t.Addr) == 0 {
		add("teleport.addr", "is required: the host:port of a Teleport Proxy or Auth Service (for example teleport.example.com:443 or auth.example.com:3025)")
	}
	for i, a := range t.Addr {
		addr, err := normalizeAddr(a)
		if err != nil {
			add(fmt.Sprintf("teleport.addr.%d", i), "%s", err)
			continue
		}
		t.Addr[i] = addr
	}
	addErrs(validateCredentials(t)...)
	for i, f := range t.ProxySSL.CertificateAuthorities {
		if err := checkPEMCerts(f); err != nil {
			add(fmt.Sprintf("teleport.proxy_ssl.certificate_authorities.%d", i), "%s", err)
		}
	}
	if t.DialTimeout <= 0 {
		add("teleport.dial_timeout", "must be positive, got %s", t.DialTimeout)
	}
	if t.ReloadInterval < 0 {
		add("teleport.reload_interval", "must not be negative, got %s", t.ReloadInterval)
	}
	if t.Backoff.Init <= 0 {
		add("teleport.backoff.init", "must be positive, got %s", t.Backoff.Init)
	}
	if t.Backoff.Max < t.Backoff.Init {
		add("teleport.backoff.max", "must be at least teleportbeat.teleport.backoff.init (%s), got %s", t.Backoff.Init, t.Backoff.Max)
	}
}

// checkAudit checks the audit log's settings and parses start_time.
func (c *Config) checkAudit(add adder) {
	a := &c.Audit
	if a.StartTime != "" {
		st, err := time.Parse(time.RFC3339Nano, a.StartTime)
		switch {
		case err != nil:
			add("audit.start_time", "%q is not an RFC 3339 time such as 2025-01-31T00:00:00Z", a.StartTime)
		case st.After(c.now().Add(futureTolerance)):
			add("audit.start_time", "%s is in the future (it is %s now): nothing would be read until then; set a time in the past to backfill from, or leave it unset to start from now", st.UTC().Format(time.RFC3339), c.now().UTC().Format(time.RFC3339))
		default:
			a.startTime = st.UTC()
		}
	}
	c.Warnings = append(c.Warnings, eventTypeWarnings(key("audit.event_types"), a.EventTypes)...)
	c.Warnings = append(c.Warnings, eventTypeWarnings(key("audit.exclude_event_types"), a.ExcludeEventTypes)...)
	if a.BatchSize < 1 || a.BatchSize > MaxBatchSize {
		add("audit.batch_size", "must be between 1 and %d (the most Teleport serves in a page), got %d", MaxBatchSize, a.BatchSize)
	}
	if a.PollInterval <= 0 {
		add("audit.poll_interval", "must be positive, got %s", a.PollInterval)
	}
	// A poll_interval_min above poll_interval (a poll_interval set below
	// the default minimum) polls every poll_interval: not an error.
	if a.PollIntervalMin <= 0 {
		add("audit.poll_interval_min", "must be positive, got %s", a.PollIntervalMin)
	}
	if a.Window < time.Minute {
		add("audit.window", "must be at least 1m, got %s", a.Window)
	}
	if a.SafetyMargin < 0 {
		add("audit.safety_margin", "must not be negative, got %s", a.SafetyMargin)
	}
	if l := &a.LateEvents; l.MaxDelay < 0 {
		add("audit.late_events.max_delay", "must not be negative (0 turns the sweeps off), got %s", l.MaxDelay)
	} else if l.MaxDelay > 0 {
		if l.MaxDelay < time.Minute {
			add("audit.late_events.max_delay", "must be at least 1m (or 0 to turn the sweeps off), got %s", l.MaxDelay)
		}
		// [0] alone asks for no earlier sweep: an empty list cannot, as
		// the config library keeps the default list for it.
		if noEarlier := len(l.Sweeps) == 1 && l.Sweeps[0] == 0; !noEarlier {
			for i, age := range l.Sweeps {
				if age <= 0 || age >= l.MaxDelay {
					add(fmt.Sprintf("audit.late_events.sweeps.%d", i), "must be positive and below teleportbeat.audit.late_events.max_delay (%s), or [0] alone for no earlier sweep, got %s", l.MaxDelay, age)
				}
			}
		}
		if l.MaxTracked < 1000 {
			add("audit.late_events.max_tracked", "must be at least 1000, got %d", l.MaxTracked)
		}
		if l.Recheck != 0 && l.Recheck <= l.MaxDelay {
			add("audit.late_events.recheck_after", "must be above teleportbeat.audit.late_events.max_delay (%s), or 0 for no recheck, got %s", l.MaxDelay, l.Recheck)
		}
	}
	if a.BackfillConcurrency < 1 || a.BackfillConcurrency > 64 {
		add("audit.backfill_concurrency", "must be between 1 and 64, got %d", a.BackfillConcurrency)
	}
	if a.Prefetch < 1 || a.Prefetch > 64 {
		add("audit.prefetch", "must be between 1 and 64, got %d", a.Prefetch)
	}
	for i, typ := range a.EventTypes {
		if strings.TrimSpace(typ) == "" {
			add(fmt.Sprintf("audit.event_types.%d", i), "is empty")
		}
	}
	for i, typ := range a.ExcludeEventTypes {
		if strings.TrimSpace(typ) == "" {
			add(fmt.Sprintf("audit.exclude_event_types.%d", i), "is empty")
		}
	}
}

func (c *Config) checkSessionsAndLock(add adder) {
	ss := &c.Sessions
	if ss.Concurrency < 1 || ss.Concurrency > 256 {
		add("sessions.concurrency", "must be between 1 and 256, got %d", ss.Concurrency)
	}
	if ss.MissingTimeout < 0 {
		add("sessions.missing_timeout", "must not be negative, got %s", ss.MissingTimeout)
	}
	if ss.MissingRetry <= 0 {
		add("sessions.missing_retry", "must be positive, got %s", ss.MissingRetry)
	}
	for i, typ := range ss.ExcludeEventTypes {
		if strings.TrimSpace(typ) == "" {
			add(fmt.Sprintf("sessions.exclude_event_types.%d", i), "is empty")
		}
	}
	if ss.Enabled {
		c.Warnings = append(c.Warnings, eventTypeWarnings(key("sessions.exclude_event_types"), ss.ExcludeEventTypes)...)
	}
	if l := &c.Lock; l.Enabled {
		if l.FailedAttempts < 1 {
			add("lock.failed_attempts", "must be at least 1, got %d", l.FailedAttempts)
		}
		if l.Period <= 0 {
			add("lock.period", "must be positive, got %s", l.Period)
		}
		if l.LockFor < 0 {
			add("lock.lock_for", "must not be negative (0 locks until the lock is removed), got %s", l.LockFor)
		}
	}
}

func (r *Registry) check(add adder) {
	if r.Path == "" {
		add("registry.path", "must not be empty")
	}
	if r.Flush < 0 {
		add("registry.flush", "must not be negative, got %s", r.Flush)
	}
	if r.RecoveryHorizon <= 0 {
		add("registry.recovery_horizon", "must be positive, got %s", r.RecoveryHorizon)
	}
	if r.FilePermissions&^0o777 != 0 || r.FilePermissions&0o600 != 0o600 {
		add("registry.file_permissions", "must be a file mode that lets the beat read and write, such as 0600, got %#o", r.FilePermissions)
	}
}
