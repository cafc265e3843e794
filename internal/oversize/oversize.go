// Package oversize keeps libbeat's Elasticsearch and Kafka outputs from
// dropping an event silently when it is too large for the receiver (the
// Kafka side is in kafka.go).
//
// libbeat's Elasticsearch output answers a 413 (Request Entity Too Large,
// from Elasticsearch's http.max_content_length or, more often, a reverse
// proxy's body limit) by splitting the batch in two, and when one event
// alone is refused it drops it: "The batch has been dropped", without its
// uid, and the acknowledgement moves teleportbeat's position past it. That
// drop is the only use of publisher.Batch.Drop in libbeat's outputs.
//
// oversize wraps the output's clients: their batches are handed over
// wrapped, and a Drop of an event refused alone is turned into a retry of
// the event truncated to half its size (internal/shrink, tagged
// teleport_truncated), up to maxCuts times, while the whole event is kept
// in the dead-letter file (internal/deadletter) and logged with its uid.
//
// libbeat offers no hook for this: the wrapper replaces the registered
// factory through a linkname to libbeat's output registry, and reads the
// encoded event's fields (unexported) by reflection. Both are pinned to the
// beats version in go.mod, and TestReadsTheEncodedEvent fails when
// either changes.
//
// Why not size events before publishing, and never hand libbeat one it
// would drop: the limit that refuses them is, in the field, a reverse
// proxy's body limit in front of Elasticsearch (nginx's 1 MiB default,
// a cloud load balancer's), which the beat cannot read or ask for; only
// the 413 says it. A limit configured in teleportbeat would be one more
// setting to keep in step with a proxy, and a wrong one still loses the
// event. And the early encoding that makes the reflection necessary is
// what keeps the queue small (each event held as its encoded bytes, not
// as maps); turning it off for this would cost every event to save the
// rare one (not measured here).
//
// Upgrading libbeat (the beats version in go.mod) therefore requires:
// `go test ./internal/oversize` (TestReadsTheEncodedEvent: the
// Elasticsearch output's encoded event still has err, encoding, meta and
// timestamp of these types; the registry still holds the output's factory
// under "elasticsearch" and "kafka", or the package panics at start with
// the output's name), and `go test ./tests -run TestTooLargeEventsAreTruncatedAndKept`
// (refusals_test.go: a 413 for one event still reaches Batch.Drop, which
// must still be the output's only drop). Should a check fail, read the
// output's client.go and encoding of the new version before adapting.
package oversize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs"
	_ "github.com/elastic/beats/v7/libbeat/outputs/elasticsearch" // registers the output wrapped here
	"github.com/elastic/beats/v7/libbeat/publisher"
	"github.com/elastic/beats/v7/libbeat/publisher/queue"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/mapstr"
	"github.com/elastic/elastic-agent-libs/paths"
	"github.com/elastic/elastic-agent-libs/testing"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/shrink"
)

//go:linkname outputReg github.com/elastic/beats/v7/libbeat/outputs.outputReg
var outputReg map[string]outputs.Factory

// maxCuts bounds how often an event is halved before it is given up (then
// it is only in the dead-letter file).
const maxCuts = 4

// cutsKey is the event metadata that counts the cuts of a truncated event.
const cutsKey = "teleportbeat_cuts"

var install sync.Once

// Install wraps the Elasticsearch output. It must run before libbeat loads
// the output (teleportbeat's command does it first).
func Install() {
	install.Do(func() {
		f := outputReg["elasticsearch"]
		if f == nil {
			panic("oversize: the elasticsearch output is not registered")
		}
		deadDir := func() string { return paths.Resolve(paths.Data, deadletter.Dir) }
		outputReg["elasticsearch"] = wrap("elasticsearch", f, deadDir)
		k := outputReg["kafka"]
		if k == nil {
			panic("oversize: the kafka output is not registered")
		}
		outputReg["kafka"] = wrapKafka(k, deadDir)
	})
}

func wrap(name string, f outputs.Factory, deadDir func() string) outputs.Factory {
	return func(im outputs.IndexManager, info beat.Info, observer outputs.Observer, cfg *config.C) (outputs.Group, error) {
		log := info.Logger
		if log == nil {
			log = logp.NewLogger("")
		}
		q := &quiet{}
		inner := info
		inner.Logger = log.WithOptions(zap.WrapCore(q.wrap))
		g, err := f(im, inner, observer, cfg)
		if err != nil {
			return g, err
		}
		dead := deadletter.New(deadDir())
		for i, c := range g.Clients {
			var enc queue.Encoder
			if g.EncoderFactory != nil {
				enc = g.EncoderFactory()
			}
			g.Clients[i] = &client{inner: c, name: name, enc: enc, dead: dead, observer: observer, log: log.Named("oversize"), quiet: q}
		}
		return g, nil
	}
}

// client wraps an output client; it is used by one goroutine at a time,
// as libbeat's output workers use their clients.
type client struct {
	inner    outputs.Client
	name     string
	enc      queue.Encoder // the output's early encoder (nil: none)
	dead     *deadletter.Writer
	observer outputs.Observer
	log      *logp.Logger
	quiet    *quiet
}

var (
	_ outputs.NetworkClient = (*client)(nil)
	_ testing.Testable      = (*client)(nil)
)

func (c *client) String() string { return c.inner.String() }
func (c *client) Close() error   { return c.inner.Close() }

// Connect connects the wrapped client when it is a network client.
func (c *client) Connect(ctx context.Context) error {
	if nc, ok := c.inner.(outputs.Connectable); ok {
		return nc.Connect(ctx)
	}
	return nil
}

// Test is `teleportbeat test output`.
func (c *client) Test(d testing.Driver) {
	if t, ok := c.inner.(testing.Testable); ok {
		t.Test(d)
	}
}

func (c *client) Publish(ctx context.Context, b publisher.Batch) error {
	return c.inner.Publish(ctx, &batch{Batch: b, c: c})
}

// batch is a publisher.Batch whose Drop keeps the events.
type batch struct {
	publisher.Batch
	c *client
}

// Drop is what the Elasticsearch output does with an event refused alone
// as too large: each event is kept in the dead-letter file and, where it
// can be made smaller, retried truncated.
func (b *batch) Drop() {
	var retry []publisher.Event
	for _, e := range b.Events() {
		if smaller, ok := b.c.refused(e); ok {
			retry = append(retry, smaller)
		}
	}
	if len(retry) > 0 {
		// libbeat logs "The batch has been dropped" right after this Drop;
		// it is not: the event is sent again, as oversize's lines say.
		b.c.quiet.expect()
		b.Batch.RetryEvents(retry)
		return
	}
	b.Batch.Drop()
}

// refused handles one event the output refused as too large, and returns
// it truncated when it can be retried.
func (c *client) refused(e publisher.Event) (publisher.Event, bool) {
	enc, err := readEncoded(e)
	if err != nil {
		c.log.Errorw("The output refused an event as too large (413), and its content cannot be read to keep it; it is dropped", "output", c.name, "error", err)
		return e, false
	}
	id, _ := enc.meta["_id"].(string)
	cuts, _ := enc.meta[cutsKey].(int)
	if cuts == 0 {
		if path, err := c.dead.Write(c.name, id, "the receiver answered 413 (too large) to this event alone; it is sent truncated, and kept whole here", enc.encoding); err != nil {
			c.log.Errorw("Cannot write an event refused as too large to the dead-letter file; it is logged here whole", "event_id", id, "error", err, "event", string(enc.encoding))
		} else {
			c.log.Errorw("The output refused an event as too large (413); it is kept whole in the dead-letter file and sent again truncated (tagged teleport_truncated)", "output", c.name, "event_id", id, "bytes", len(enc.encoding), "file", path)
		}
		c.observer.DeadLetterEvents(1)
	}
	if cuts >= maxCuts || c.enc == nil {
		c.log.Errorw("The output refuses an event as too large even truncated; it is only in the dead-letter file", "output", c.name, "event_id", id, "cuts", cuts, "bytes", len(enc.encoding))
		return e, false
	}
	var doc map[string]any
	if err := json.Unmarshal(enc.encoding, &doc); err != nil {
		c.log.Errorw("An event refused as too large does not decode; it is only in the dead-letter file", "event_id", id, "error", err)
		return e, false
	}
	delete(doc, "@timestamp")
	res, _ := shrink.Document(doc, len(enc.encoding)/2)
	meta := enc.meta.Clone()
	meta[cutsKey] = cuts + 1
	entry, _ := c.enc.EncodeEntry(publisher.Event{Content: beat.Event{Timestamp: enc.timestamp, Meta: meta, Fields: mapstr.M(doc)}})
	out, ok := entry.(publisher.Event)
	if !ok {
		return e, false
	}
	c.log.Warnw("Sending again, truncated, an event the output refused as too large", "event_id", id, "bytes", res.OriginalBytes, "truncated_to", res.Bytes, "fields", res.Fields, "cut", cuts+1)
	return out, true
}

// encoded is what oversize reads of the Elasticsearch output's encoded
// event (its unexported type elasticsearch.encodedEvent).
type encoded struct {
	encoding  []byte
	meta      mapstr.M
	timestamp time.Time
}

// readEncoded reads the encoded event's JSON, metadata and timestamp.
func readEncoded(e publisher.Event) (encoded, error) {
	if e.EncodedEvent == nil {
		// Not early-encoded: the content is still there.
		b, err := json.Marshal(e.Content.Fields)
		if err != nil {
			return encoded{}, err
		}
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		doc["@timestamp"] = e.Content.Timestamp
		b, err = json.Marshal(doc)
		return encoded{encoding: b, meta: e.Content.Meta, timestamp: e.Content.Timestamp}, err
	}
	v := reflect.ValueOf(e.EncodedEvent)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return encoded{}, fmt.Errorf("encoded event of unexpected type %T", e.EncodedEvent)
	}
	s := v.Elem()
	field := func(name string, want reflect.Type) (reflect.Value, error) {
		f := s.FieldByName(name)
		if !f.IsValid() || f.Type() != want {
			return reflect.Value{}, fmt.Errorf("encoded event %T has no %s of type %s (libbeat changed?)", e.EncodedEvent, name, want)
		}
		return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), nil
	}
	var out encoded
	if f, err := field("err", reflect.TypeOf((*error)(nil)).Elem()); err != nil {
		return out, err
	} else if !f.IsNil() {
		return out, errors.Join(errors.New("the event could not be encoded"), f.Interface().(error))
	}
	enc, err := field("encoding", reflect.TypeOf([]byte(nil)))
	if err != nil {
		return out, err
	}
	meta, err := field("meta", reflect.TypeOf(mapstr.M(nil)))
	if err != nil {
		return out, err
	}
	ts, err := field("timestamp", reflect.TypeOf(time.Time{}))
	if err != nil {
		return out, err
	}
	out.encoding = enc.Interface().([]byte)
	out.meta, _ = meta.Interface().(mapstr.M)
	out.timestamp = ts.Interface().(time.Time)
	return out, nil
}

// quiet holds back libbeat's "The batch has been dropped" error once for
// each Drop that oversize turned into a retry: that line would tell the
// reader an event was lost when it is being sent again. A Drop oversize
// could not turn into a retry keeps libbeat's line (and oversize's own,
// with the uid). The output's workers share the logger, so it is a count.
type quiet struct{ pending atomic.Int64 }

func (q *quiet) expect() { q.pending.Add(1) }

// take consumes one expected line, if any is expected.
func (q *quiet) take() bool {
	for {
		n := q.pending.Load()
		if n <= 0 {
			return false
		}
		if q.pending.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (q *quiet) wrap(c zapcore.Core) zapcore.Core { return quietCore{Core: c, q: q} }

// droppedLine tells libbeat's errPayloadTooLarge (libbeat/outputs/
// elasticsearch/client.go), logged after a 413 to an event sent alone.
func droppedLine(msg string) bool {
	return strings.HasPrefix(msg, "the bulk payload is too large for the server") && strings.HasSuffix(msg, "The batch has been dropped")
}

type quietCore struct {
	zapcore.Core
	q *quiet
}

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{Core: c.Core.With(fields), q: c.q}
}

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if droppedLine(e.Message) && c.q.take() {
		return ce
	}
	return c.Core.Check(e, ce)
}
