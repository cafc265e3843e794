// Package httpout is a libbeat output, "http", that POSTs events as JSON in
// batches over HTTPS (mutual TLS with libbeat's ssl options), for the HTTP
// receivers Teleport's event handler feeds: Fluentd's in_http and
// Logstash's http input. Failed requests are retried with capped
// exponential backoff; a batch the receiver refuses as malformed (4xx) is
// logged with the ids of its events and dropped, as libbeat's Elasticsearch
// output does with documents it cannot index.
package httpout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs"
	"github.com/elastic/beats/v7/libbeat/outputs/codec"
	"github.com/elastic/beats/v7/libbeat/outputs/codec/json"
	"github.com/elastic/beats/v7/libbeat/publisher"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/testing"
	"github.com/elastic/elastic-agent-libs/transport/tlscommon"
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
			errs = append(errs, fmt.Errorf("output.http.%s: %q is not an http(s) URL", key, u))
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
	c := defaultConfig()
	if err := cfg.Unpack(&c); err != nil {
		return outputs.Fail(fmt.Errorf("output.http: %w", err))
	}
	if c.SessionURL == "" {
		c.SessionURL = c.URL
	}
	if err := c.validate(); err != nil {
		return outputs.Fail(err)
	}
	tlsCfg, err := tlscommon.LoadTLSConfig(c.TLS, info.Logger)
	if err != nil {
		return outputs.Fail(fmt.Errorf("output.http.ssl: %w", err))
	}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4}
	if tlsCfg != nil {
		host := c.URL
		if u, err := url.Parse(c.URL); err == nil {
			host = u.Hostname()
		}
		transport.TLSClientConfig = tlsCfg.BuildModuleClientConfig(host)
	}
	cl := &client{
		cfg:      c,
		log:      info.Logger.Named("http"),
		observer: observer,
		http:     &http.Client{Transport: transport, Timeout: c.Timeout},
		codec:    json.New(info.Version, json.Config{EscapeHTML: false}),
		index:    info.Beat,
	}
	return outputs.Success(c.Queue, c.BulkMaxSize, -1, nil, info.Logger, outputs.WithBackoff(cl, c.Backoff.Init, c.Backoff.Max))
}

type client struct {
	cfg      Config
	log      *logp.Logger
	observer outputs.Observer
	http     *http.Client
	codec    codec.Codec
	index    string
}

func (c *client) String() string { return "http(" + c.cfg.URL + ")" }

// Connect has nothing to open: connections are made per request.
func (c *client) Connect(context.Context) error { return nil }

func (c *client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Test implements `teleportbeat test output`.
func (c *client) Test(d testing.Driver) {
	d.Run("http: "+c.cfg.URL, func(d testing.Driver) {
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

func (c *client) Publish(ctx context.Context, batch publisher.Batch) error {
	events := batch.Events()
	c.observer.NewBatch(len(events))
	byURL := map[string][]int{}
	for i := range events {
		u := c.cfg.URL
		if ds, _ := events[i].Content.Fields.GetValue("event.dataset"); ds == "teleport.session" {
			u = c.cfg.SessionURL
		}
		byURL[u] = append(byURL[u], i)
	}
	var retry []publisher.Event
	dropped, acked := 0, 0
	var firstErr error
	for u, idx := range byURL {
		body, encoded, failedEncode := c.encode(events, idx)
		dropped += failedEncode
		if encoded == 0 {
			continue
		}
		status, err := c.post(ctx, u, body)
		switch {
		case err != nil || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
			if err == nil {
				err = fmt.Errorf("%s answered %d", u, status)
			}
			if firstErr == nil {
				firstErr = err
			}
			for _, i := range idx {
				retry = append(retry, events[i])
			}
			c.observer.RetryableErrors(len(idx))
		case status >= 300:
			c.log.Errorw("The HTTP receiver refused a batch; its events are dropped", "url", u, "status", status, "event_ids", ids(events, idx))
			dropped += encoded
		default:
			acked += encoded
		}
	}
	c.observer.AckedEvents(acked)
	c.observer.PermanentErrors(dropped)
	if len(retry) > 0 {
		batch.RetryEvents(retry)
		return errRetry{fmt.Errorf("http output: %w", firstErr)}
	}
	batch.ACK()
	return nil
}

func (c *client) encode(events []publisher.Event, idx []int) ([]byte, int, int) {
	var b bytes.Buffer
	if c.cfg.Format == "json_array" {
		b.WriteByte('[')
	}
	n, failed := 0, 0
	for _, i := range idx {
		data, err := c.codec.Encode(c.index, &events[i].Content)
		if err != nil {
			c.log.Errorw("Cannot encode an event; it is dropped", "error", err, "event_ids", ids(events, []int{i}))
			failed++
			continue
		}
		if n > 0 && c.cfg.Format == "json_array" {
			b.WriteByte(',')
		}
		b.Write(data)
		if c.cfg.Format == "ndjson" {
			b.WriteByte('\n')
		}
		n++
	}
	if c.cfg.Format == "json_array" {
		b.WriteByte(']')
	}
	return b.Bytes(), n, failed
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

func ids(events []publisher.Event, idx []int) string {
	var out []string
	for _, i := range idx {
		if v, err := events[i].Content.Fields.GetValue("event.id"); err == nil {
			out = append(out, fmt.Sprint(v))
		}
	}
	return strings.Join(out, ",")
}
