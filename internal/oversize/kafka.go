package oversize

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs"
	"github.com/elastic/beats/v7/libbeat/outputs/codec"
	_ "github.com/elastic/beats/v7/libbeat/outputs/codec/json" // the Kafka output's default codec
	_ "github.com/elastic/beats/v7/libbeat/outputs/kafka"      // registers the output wrapped here
	"github.com/elastic/beats/v7/libbeat/publisher"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/elastic/elastic-agent-libs/mapstr"
	"github.com/elastic/elastic-agent-libs/testing"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/shrink"
)

// The Kafka output drops a message larger than its max_message_bytes
// (sarama refuses it before sending: "Attempt to produce message larger
// than configured Producer.MaxMessageBytes") with "dropping message as it
// exceeds max_mesage_bytes" and the topic only, and acknowledges it
// (libbeat/outputs/kafka/client.go, msgRef.fail). kafkaClient checks each
// event's size before the output encodes it: one too large is kept whole
// in the dead-letter file, logged with its uid, counted, and sent
// truncated (tagged teleport_truncated) to fit.

// saramaMaxMessageBytes is sarama's default Producer.MaxMessageBytes, the
// Kafka output's when max_message_bytes is not set.
const saramaMaxMessageBytes = 1000000

// kafkaHeadroom is what a produced message takes beside its key and value
// (sarama's ProducerMessage.ByteSize: record headers, timestamps), with
// room to spare.
const kafkaHeadroom = 1024

func wrapKafka(f outputs.Factory, deadDir func() string) outputs.Factory {
	return func(im outputs.IndexManager, info beat.Info, observer outputs.Observer, cfg *config.C) (outputs.Group, error) {
		g, err := f(im, info, observer, cfg)
		if err != nil {
			return g, err
		}
		log := info.Logger
		if log == nil {
			log = logp.NewLogger("")
		}
		limit, err := cfg.Int("max_message_bytes", -1)
		if err != nil {
			limit = saramaMaxMessageBytes
		}
		var ccfg struct {
			Codec codec.Config `config:"codec"`
		}
		if err := cfg.Unpack(&ccfg); err != nil {
			return g, fmt.Errorf("kafka output codec: %w", err)
		}
		enc, err := codec.CreateEncoder(info, ccfg.Codec)
		if err != nil {
			return g, fmt.Errorf("kafka output codec: %w", err)
		}
		dead := deadletter.New(deadDir())
		for i, c := range g.Clients {
			g.Clients[i] = &kafkaClient{inner: c, limit: int(limit), enc: enc, index: info.IndexPrefix, dead: dead, observer: observer, log: log.Named("oversize")}
		}
		return g, nil
	}
}

// kafkaClient wraps the Kafka output's client.
type kafkaClient struct {
	inner    outputs.Client
	limit    int // max_message_bytes
	enc      codec.Codec
	index    string
	dead     *deadletter.Writer
	observer outputs.Observer
	log      *logp.Logger
}

var (
	_ outputs.NetworkClient = (*kafkaClient)(nil)
	_ testing.Testable      = (*kafkaClient)(nil)
)

func (c *kafkaClient) String() string { return c.inner.String() }
func (c *kafkaClient) Close() error   { return c.inner.Close() }

func (c *kafkaClient) Connect(ctx context.Context) error {
	if nc, ok := c.inner.(outputs.Connectable); ok {
		return nc.Connect(ctx)
	}
	return nil
}

func (c *kafkaClient) Test(d testing.Driver) {
	if t, ok := c.inner.(testing.Testable); ok {
		t.Test(d)
	}
}

// Publish makes every event of the batch fit max_message_bytes, then
// hands the batch to the output. The events are changed in place (the
// batch's slice is the output's).
func (c *kafkaClient) Publish(ctx context.Context, b publisher.Batch) error {
	events := b.Events()
	for i := range events {
		c.fit(&events[i])
	}
	return c.inner.Publish(ctx, b)
}

// fit truncates an event the Kafka output would drop as too large.
func (c *kafkaClient) fit(e *publisher.Event) {
	room := c.limit - kafkaHeadroom
	// Most events are far below the limit: a bound on their encoded size,
	// without encoding, spares the second encoding.
	if bound, ok := jsonBound(e.Content.Fields); ok && bound+jsonBound0(e.Content.Meta) < room {
		return
	}
	value, err := c.enc.Encode(c.index, &e.Content)
	if err != nil || len(value) <= room {
		return // the output says what it cannot encode
	}
	id := kafkaEventID(e)
	whole := append([]byte(nil), value...)
	if path, err := c.dead.Write("kafka", id, fmt.Sprintf("the Kafka output's max_message_bytes is %d and this event is %d bytes encoded; it is sent truncated, and kept whole here", c.limit, len(value)), whole); err != nil {
		c.log.Errorw("Cannot write an event too large for Kafka to the dead-letter file; it is logged here whole", "event_id", id, "error", err, "event", string(whole))
	} else {
		c.log.Errorw("An event is larger than the Kafka output's max_message_bytes; it is kept whole in the dead-letter file and sent truncated (tagged teleport_truncated)", "event_id", id, "bytes", len(value), "max_message_bytes", c.limit, "file", path)
	}
	c.observer.DeadLetterEvents(1)

	var doc map[string]any
	b, err := json.Marshal(e.Content.Fields)
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err != nil {
		c.log.Errorw("An event too large for Kafka cannot be truncated; the Kafka output will drop it (it is in the dead-letter file)", "event_id", id, "error", err)
		return
	}
	// The fields' share of the room (the codec adds @timestamp, @metadata).
	target := room - (len(value) - len(b))
	res, ok := shrink.Document(doc, max(target, 1))
	e.Content.Fields = mapstr.M(doc)
	if !ok {
		c.log.Errorw("An event too large for Kafka stays too large truncated; the Kafka output will drop it (it is in the dead-letter file)", "event_id", id, "bytes", res.Bytes)
		return
	}
	c.log.Warnw("Sending truncated an event larger than the Kafka output's max_message_bytes", "event_id", id, "bytes", res.OriginalBytes, "truncated_to", res.Bytes, "fields", res.Fields)
}

// jsonBound0 is jsonBound for metadata, whose absence costs nothing.
func jsonBound0(m mapstr.M) int {
	n, ok := jsonBound(m)
	if !ok {
		return 1 << 30
	}
	return n
}

// jsonBound bounds the JSON size of v from above (every byte of a string
// escaped as \u00XX at worst), or says it cannot.
func jsonBound(v any) (int, bool) {
	switch x := v.(type) {
	case nil:
		return 4, true
	case string:
		return 6*len(x) + 2, true
	case bool:
		return 5, true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return 32, true
	case time.Time:
		return 40, true
	case mapstr.M:
		return jsonBoundMap(x)
	case map[string]any:
		return jsonBoundMap(x)
	case []any:
		return jsonBoundSlice(x, jsonBound)
	case []string:
		n := 2
		for _, e := range x {
			n += 6*len(e) + 3
		}
		return n, true
	case []mapstr.M:
		return jsonBoundSlice(x, func(m mapstr.M) (int, bool) { return jsonBoundMap(m) })
	}
	return 0, false
}

// jsonBoundSlice is jsonBound of a JSON array of xs.
func jsonBoundSlice[T any](xs []T, bound func(T) (int, bool)) (int, bool) {
	n := 2
	for _, e := range xs {
		m, ok := bound(e)
		if !ok {
			return 0, false
		}
		n += m + 1
	}
	return n, true
}

func jsonBoundMap(m map[string]any) (int, bool) {
	n := 2
	for k, v := range m {
		b, ok := jsonBound(v)
		if !ok {
			return 0, false
		}
		n += 6*len(k) + 4 + b
	}
	return n, true
}

// kafkaEventID is the event's uid (event.id, or the _id the mapper sets).
func kafkaEventID(e *publisher.Event) string {
	if v, err := e.Content.Fields.GetValue("event.id"); err == nil {
		return fmt.Sprint(v)
	}
	if v, err := e.Content.Meta.GetValue("_id"); err == nil {
		return fmt.Sprint(v)
	}
	return ""
}
