package oversize

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/sarama"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs"
	"github.com/elastic/beats/v7/libbeat/publisher"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/mapstr"
	"github.com/elastic/elastic-agent-libs/monitoring"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/shrink"
)

// ackBatch is a publisher.Batch that says when the output is done with it.
type ackBatch struct {
	recordingBatch
	mu   sync.Mutex
	done chan struct{}
}

func (b *ackBatch) ACK() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acked = true
	close(b.done)
}

// TestAnEventTooLargeForKafkaIsTruncatedAndKept runs libbeat's Kafka
// output against sarama's mock broker with max_message_bytes 20,000: a
// 100 KB event, which the output would drop with its topic only, is kept
// whole in the dead-letter file under its uid and produced truncated
// (sarama sends it and the broker acknowledges it); the small event of
// the same batch is produced as it is.
func TestAnEventTooLargeForKafkaIsTruncatedAndKept(t *testing.T) {
	broker := sarama.NewMockBroker(t, 1)
	defer broker.Close()
	broker.SetHandlerByMap(map[string]sarama.MockResponse{
		"MetadataRequest": sarama.NewMockMetadataResponse(t).
			SetBroker(broker.Addr(), broker.BrokerID()).
			SetLeader("teleport", 0, broker.BrokerID()),
		"ProduceRequest":     sarama.NewMockProduceResponse(t),
		"ApiVersionsRequest": sarama.NewMockApiVersionsResponse(t),
	})

	dead := filepath.Join(t.TempDir(), "dead-letter")
	reg := monitoring.NewRegistry()
	log, logs := logptest.NewTestingLoggerWithObserver(t, "")
	stats := outputs.NewStats(reg, log)
	cfg := config.MustNewConfigFrom(map[string]any{
		"hosts": []string{broker.Addr()}, "topic": "teleport", "max_message_bytes": 20000,
		"version": "2.1.0", "required_acks": 1, "partition.round_robin": map[string]any{"reachable_only": false},
	})
	info := beat.Info{Beat: "teleportbeat", IndexPrefix: "teleportbeat", Version: "9.3.0", Logger: log}
	g, err := wrapKafka(outputReg["kafka"], func() string { return dead })(nil, info, stats, cfg)
	require.NoError(t, err)
	c := g.Clients[0].(*kafkaClient)
	require.NoError(t, c.Connect(context.Background()))
	defer c.Close()

	big := strings.Repeat("0123456789abcdef", 100_000/16)
	b := &ackBatch{done: make(chan struct{}), recordingBatch: recordingBatch{events: []publisher.Event{
		{Content: beat.Event{Timestamp: time.Now(), Meta: mapstr.M{"_id": "uid-big"},
			Fields: mapstr.M{"event": mapstr.M{"id": "uid-big", "action": "db.session.query"}, "teleport": mapstr.M{"audit": mapstr.M{"db_query": big, "user": "alice"}}}}},
		{Content: beat.Event{Timestamp: time.Now(), Meta: mapstr.M{"_id": "uid-small"},
			Fields: mapstr.M{"event": mapstr.M{"id": "uid-small", "action": "user.login"}, "user": mapstr.M{"name": "bob"}}}},
	}}}
	require.NoError(t, c.Publish(context.Background(), b))
	select {
	case <-b.done:
	case <-time.After(time.Minute):
		t.Fatal("the Kafka output did not finish the batch")
	}

	snap := monitoring.CollectFlatSnapshot(reg, monitoring.Full, false)
	require.EqualValues(t, 2, snap.Ints["events.acked"], "both produced and acknowledged by the broker: %v", snap.Ints)
	require.EqualValues(t, 0, snap.Ints["events.dropped"], "none dropped as too large")
	require.EqualValues(t, 1, snap.Ints["events.dead_letter"], "the big one counted")

	sent := b.events[0].Content.Fields
	tags, _ := sent.GetValue("tags")
	require.Contains(t, tags, shrink.Tag)
	user, _ := sent.GetValue("teleport.audit.user")
	require.Equal(t, "alice", user, "small fields are kept")
	small := b.events[1].Content.Fields
	_, err = small.GetValue("tags")
	require.Error(t, err, "the small event is untouched")

	recs, err := deadletter.Read(dead)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "uid-big", recs[0].EventID)
	require.Equal(t, "kafka", recs[0].Output)
	require.Contains(t, string(recs[0].Doc), big, "kept whole")
	require.Equal(t, 1, logs.FilterMessageSnippet("larger than the Kafka output's max_message_bytes; it is kept whole").FilterField(zap.String("event_id", "uid-big")).Len())
	require.Zero(t, logs.FilterMessageSnippet("dropping").Len(), "the Kafka output dropped nothing")
}

// TestJSONBound: the bound is never below the encoded size, whatever is
// escaped.
func TestJSONBound(t *testing.T) {
	for _, v := range []mapstr.M{
		{"a": "plain", "n": 3, "f": 1.5e300, "b": true, "z": nil},
		{"ctl": "\x00\x01\x1f<>&\u2028", "nested": map[string]any{"list": []any{"x", 1, mapstr.M{"y": "\"\\"}}}, "s": []string{"é", "\t"}},
		{"t": time.Date(2026, 12, 3, 1, 2, 3, 456789, time.UTC), "ms": []mapstr.M{{"k": "v"}}},
	} {
		enc, err := json.Marshal(v)
		require.NoError(t, err)
		bound, ok := jsonBound(v)
		require.True(t, ok)
		require.GreaterOrEqual(t, bound, len(enc), "%v", v)
	}
	_, ok := jsonBound(mapstr.M{"ip": []int{1}})
	require.False(t, ok, "a type it does not know: encoded to measure")
}
