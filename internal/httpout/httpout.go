// Package httpout is a libbeat output, "http", that POSTs events as JSON in
// batches over HTTPS (mutual TLS with libbeat's ssl options), for the HTTP
// receivers Teleport's event handler feeds: Fluentd's in_http and
// Logstash's http input.
//
// Nothing is dropped. A request that fails, and every answer that can turn
// into a success later (3xx, 401, 403, 404, 408, 429, 5xx: a rotated
// credential, a receiver being deployed) is retried with capped exponential
// backoff; the batch stays in libbeat's queue, so the position is never
// recorded past it. Only an answer about the content (400, 413, 415, 422)
// is taken per event: the batch is split until the refused events stand
// alone; one refused as too large (413) is truncated (internal/shrink) and
// sent again; one the receiver can never take goes, whole and with its
// uid, to the dead-letter file (internal/deadletter), logged and counted.
package httpout

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/teleportbeat/teleportbeat/internal/redact"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs"
	"github.com/elastic/beats/v7/libbeat/outputs/codec"
	"github.com/elastic/beats/v7/libbeat/outputs/codec/json"
	"github.com/elastic/beats/v7/libbeat/publisher"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/paths"
	"github.com/elastic/elastic-agent-libs/testing"
	"github.com/elastic/elastic-agent-libs/transport/tlscommon"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/shrink"
)

func init() {
	outputs.RegisterType("http", makeHTTP)
}

// Config is output.http.
type Config struct {
	// URL receives audit events; SessionURL receives session recording
	// events (dataset teleport.session), URL when empty.
	URL        string            `config:"url"`
	SessionURL string            `config:"session_url"`
	Headers    map[string]string `config:"headers"`
	// Format is json_array (one JSON array per request, what Fluentd's
	// in_http and Logstash's json codec split into events) or ndjson.
	Format      string            `config:"format"`
	BulkMaxSize int               `config:"bulk_max_size"`
	Timeout     time.Duration     `config:"timeout"`
	TLS         *tlscommon.Config `config:"ssl"`
	Backoff     struct {
		Init time.Duration `config:"init"`
		Max  time.Duration `config:"max"`
	} `config:"backoff"`
	Queue config.Namespace `config:"queue"`
}

func defaultConfig() Config {
	c := Config{Format: "json_array", BulkMaxSize: 100, Timeout: 30 * time.Second}
	c.Backoff.Init, c.Backoff.Max = time.Second, time.Minute
	return c
}

func (c *Config) validate() error {
	var errs []error
	for key, u := range map[string]string{"url": c.URL, "session_url": c.SessionURL} {
		if u == "" {
			if key == "url" {
				errs = append(errs, errors.New("output.http.url: is required"))
			}
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("output.http.%s: %q is not an http(s) URL", key, redact.URL(u)))
		}
	}
	if c.Format != "json_array" && c.Format != "ndjson" {
		errs = append(errs, fmt.Errorf("output.http.format: must be json_array or ndjson, got %q", c.Format))
	}
	if c.BulkMaxSize < 1 {
		errs = append(errs, fmt.Errorf("output.http.bulk_max_size: must be at least 1, got %d", c.BulkMaxSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("output.http.timeout: must be positive, got %s", c.Timeout))
	}
	if c.Backoff.Init <= 0 || c.Backoff.Max < c.Backoff.Init {
		errs = append(errs, fmt.Errorf("output.http.backoff: init must be positive and max at least init, got %s and %s", c.Backoff.Init, c.Backoff.Max))
	}
	return errors.Join(errs...)
}

func makeHTTP(_ outputs.IndexManager, info beat.Info, observer outputs.Observer, cfg *config.C) (outputs.Group, error) {
	cl, err := newClient(info, observer, cfg)
	if err != nil {
		return outputs.Fail(err)
	}
	return outputs.Success(cl.cfg.Queue, cl.cfg.BulkMaxSize, -1, nil, info.Logger, outputs.WithBackoff(cl, cl.cfg.Backoff.Init, cl.cfg.Backoff.Max))
}

func newClient(info beat.Info, observer outputs.Observer, cfg *config.C) (*client, error) {
	c := defaultConfig()
	if err := cfg.Unpack(&c); err != nil {
		return nil, fmt.Errorf("output.http: %w", err)
	}
	if c.SessionURL == "" {
		c.SessionURL = c.URL
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := tlscommon.LoadTLSConfig(c.TLS, info.Logger)
	if err != nil {
		return nil, fmt.Errorf("output.http.ssl: %w", err)
	}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4}
	if tlsCfg != nil {
		host := c.URL
		if u, err := url.Parse(c.URL); err == nil {
			host = u.Hostname()
		}
		transport.TLSClientConfig = tlsCfg.BuildModuleClientConfig(host)
	}
	return &client{
		cfg:      c,
		log:      info.Logger.Named("http"),
		observer: observer,
		http:     &http.Client{Transport: transport, Timeout: c.Timeout},
		codec:    json.New(info.Version, json.Config{EscapeHTML: false}),
		index:    info.Beat,
		dead:     deadletter.New(paths.Resolve(paths.Data, deadletter.Dir)),
	}, nil
}

// Sender posts documents, one at a time, to the receiver output.http
// configures: `teleportbeat dead-letter replay` sends what the receiver
// refused before with it.
type Sender struct{ c *client }

// NewSender reads output.http's settings (cfg is the output's section).
func NewSender(info beat.Info, cfg *config.C) (*Sender, error) {
	c, err := newClient(info, outputs.NewNilObserver(), cfg)
	if err != nil {
		return nil, err
	}
	return &Sender{c: c}, nil
}

// Send posts one document (JSON, as the output sent it) to the URL of its
// dataset and returns the receiver's status.
func (s *Sender) Send(ctx context.Context, doc []byte, session bool) (int, error) {
	u := s.c.cfg.URL
	if session {
		u = s.c.cfg.SessionURL
	}
	status, err := s.c.post(ctx, u, s.c.body([]item{{data: doc}}))
	if err != nil {
		return 0, fmt.Errorf("post to %s: %w", redact.URL(u), err)
	}
	return status, nil
}

// Retryable reports whether the receiver may take the document later
// (the statuses the output retries).
func Retryable(status int) bool { return retryable(status) }

type client struct {
	cfg      Config
	log      *logp.Logger
	observer outputs.Observer
	http     *http.Client
	codec    codec.Codec
	index    string
	dead     *deadletter.Writer
}

// String names the output in libbeat's log lines ("Connection to
// backoff(http(...)) established"): without the URL's credentials.
func (c *client) String() string { return "http(" + redact.URL(c.cfg.URL) + ")" }

// Connect has nothing to open: connections are made per request.
func (c *client) Connect(context.Context) error { return nil }

func (c *client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Test implements `teleportbeat test output`.
func (c *client) Test(d testing.Driver) {
	d.Run("http: "+redact.URL(c.cfg.URL), func(d testing.Driver) {
		req, err := http.NewRequest(http.MethodHead, c.cfg.URL, nil)
		d.Fatal("request", err)
		resp, err := c.http.Do(req)
		d.Fatal("connection", err)
		resp.Body.Close()
		d.Info("status", resp.Status)
	})
}

// errRetry reports a failed request; the batch is retried.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }

// retryable reports whether an answer can turn into a success when the
// same request is sent again: everything but an answer about the content.
func retryable(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return false
	}
	return status < 200 || status >= 300
}

// item is one event on its way: its encoding, and how often it was
// truncated.
type item struct {
	event publisher.Event
	data  []byte
	cuts  int
}

// maxCuts bounds how often a refused event is truncated (halving its size
// each time) before it goes to the dead-letter file.
const maxCuts = 4

func (c *client) Publish(ctx context.Context, batch publisher.Batch) error {
	events := batch.Events()
	c.observer.NewBatch(len(events))
	byURL := map[string][]item{}
	var order []string
	dead := 0
	for i := range events {
		u := c.cfg.URL
		if ds, _ := events[i].Content.Fields.GetValue("event.dataset"); ds == "teleportbeat.session" {
			u = c.cfg.SessionURL
		}
		data, err := c.codec.Encode(c.index, &events[i].Content)
		if err != nil {
			c.deadLetter(events[i], []byte(fmt.Sprint(events[i].Content.Fields)), "the event cannot be encoded as JSON: "+err.Error(), true)
			dead++
			continue
		}
		if _, ok := byURL[u]; !ok {
			order = append(order, u)
		}
		byURL[u] = append(byURL[u], item{event: events[i], data: append([]byte(nil), data...)})
	}
	var retry []publisher.Event
	acked := 0
	var firstErr error
	for _, u := range order {
		a, d, r, err := c.deliver(ctx, u, byURL[u])
		acked += a
		dead += d
		retry = append(retry, r...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	c.observer.AckedEvents(acked)
	if dead > 0 {
		c.observer.DeadLetterEvents(dead)
	}
	if len(retry) > 0 {
		c.observer.RetryableErrors(len(retry))
		batch.RetryEvents(retry)
		return errRetry{fmt.Errorf("http output: %w", firstErr)}
	}
	batch.ACK()
	return nil
}

// deliver posts items to u and returns how many were delivered, how many
// went to the dead-letter file, the events to retry and why.
func (c *client) deliver(ctx context.Context, u string, items []item) (acked, dead int, retry []publisher.Event, err error) {
	status, err := c.post(ctx, u, c.body(items))
	switch {
	case err != nil || retryable(status):
		if err == nil {
			err = fmt.Errorf("%s answered %d", redact.URL(u), status)
			c.log.Warnw("The HTTP receiver refuses the batch; it is retried until the receiver takes it (nothing is dropped)", "url", redact.URL(u), "status", status, "events", len(items))
		}
		for _, it := range items {
			retry = append(retry, it.event)
		}
		return 0, 0, retry, err
	case status < 300:
		return len(items), 0, nil, nil
	case len(items) > 1:
		// An answer about the content: find the events it is about.
		half := len(items) / 2
		a1, d1, r1, e1 := c.deliver(ctx, u, items[:half])
		a2, d2, r2, e2 := c.deliver(ctx, u, items[half:])
		if e1 == nil {
			e1 = e2
		}
		return a1 + a2, d1 + d2, append(r1, r2...), e1
	}
	it := items[0]
	if status == http.StatusRequestEntityTooLarge && it.cuts < maxCuts {
		smaller, ok := c.shrunk(it, u)
		if ok {
			return c.deliver(ctx, u, []item{smaller})
		}
	}
	reason := fmt.Sprintf("%s answered %d to this event alone", redact.URL(u), status)
	if it.cuts > 0 {
		reason += fmt.Sprintf(" (after truncating it %d times)", it.cuts)
	}
	c.deadLetter(it.event, it.data, reason, true)
	return 0, 1, nil, nil
}

// shrunk is the item truncated to half its size, its original kept in the
// dead-letter file (on the first cut).
func (c *client) shrunk(it item, u string) (item, bool) {
	var doc map[string]any
	if err := stdjson.Unmarshal(it.data, &doc); err != nil {
		return it, false
	}
	if it.cuts == 0 {
		c.deadLetter(it.event, it.data, fmt.Sprintf("%s answered 413 (too large) to this event alone; it is sent truncated, and kept whole here", redact.URL(u)), false)
	}
	res, _ := shrink.Document(doc, len(it.data)/2)
	data, err := stdjson.Marshal(doc)
	if err != nil || len(data) >= len(it.data) {
		return it, false
	}
	c.log.Warnw("The HTTP receiver refused an event as too large; it is sent again truncated (tagged teleport_truncated), and kept whole in the dead-letter file",
		"url", redact.URL(u), "event_id", eventID(it.event), "bytes", res.OriginalBytes, "truncated_to", len(data), "fields", res.Fields)
	return item{event: it.event, data: data, cuts: it.cuts + 1}, true
}

// deadLetter keeps an event in the dead-letter file: one the receiver
// refuses for good (refused), or the whole form of one sent truncated.
func (c *client) deadLetter(e publisher.Event, data []byte, reason string, refused bool) {
	id := eventID(e)
	path, err := c.dead.Write("http", id, reason, data)
	if err != nil {
		c.log.Errorw("An event the HTTP receiver refuses whole cannot be written to the dead-letter file either; it is logged here whole", "event_id", id, "reason", reason, "error", err, "event", string(data))
		return
	}
	if !refused {
		c.log.Infow("An event is kept whole in the dead-letter file while it is sent truncated", "event_id", id, "reason", reason, "file", path)
		return
	}
	c.log.Errorw("The HTTP receiver refuses an event; it is kept in the dead-letter file and not sent again unless `teleportbeat dead-letter replay` is run", "event_id", id, "reason", reason, "file", path)
}

func eventID(e publisher.Event) string {
	if v, err := e.Content.Fields.GetValue("event.id"); err == nil {
		return fmt.Sprint(v)
	}
	if v, err := e.Content.Meta.GetValue("_id"); err == nil {
		return fmt.Sprint(v)
	}
	return ""
}

// body is the request body of items: a JSON array or NDJSON.
func (c *client) body(items []item) []byte {
	var b bytes.Buffer
	if c.cfg.Format == "json_array" {
		b.WriteByte('[')
	}
	for i, it := range items {
		if i > 0 && c.cfg.Format == "json_array" {
			b.WriteByte(',')
		}
		b.Write(it.data)
		if c.cfg.Format == "ndjson" {
			b.WriteByte('\n')
		}
	}
	if c.cfg.Format == "json_array" {
		b.WriteByte(']')
	}
	return b.Bytes()
}

func (c *client) post(ctx context.Context, u string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if c.cfg.Format == "ndjson" {
		req.Header.Set("Content-Type", "application/x-ndjson")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observer.WriteError(err)
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	c.observer.WriteBytes(len(body))
	c.observer.ReportLatency(time.Since(start))
	return resp.StatusCode, nil
}
