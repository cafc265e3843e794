package oversize

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs"
	"github.com/elastic/beats/v7/libbeat/publisher"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/mapstr"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/shrink"
	"github.com/teleportbeat/teleportbeat/internal/testkit/estest"
)

// recordingBatch is a publisher.Batch that remembers what the output did
// with it.
type recordingBatch struct {
	events  []publisher.Event
	acked   bool
	dropped bool
	retried []publisher.Event
}

func (b *recordingBatch) Events() []publisher.Event { return b.events }
func (b *recordingBatch) ACK()                      { b.acked = true }
func (b *recordingBatch) Drop()                     { b.dropped = true }
func (b *recordingBatch) Retry()                    { b.retried = b.events }
func (b *recordingBatch) RetryEvents(e []publisher.Event) {
	b.retried = e
}
func (b *recordingBatch) SplitRetry() bool { return len(b.events) > 1 }
func (b *recordingBatch) Cancelled()       {}

// fixedIndex sends every event to one index.
type fixedIndex string

func (f fixedIndex) BuildSelector(*config.C) (outputs.IndexSelector, error) { return f, nil }
func (f fixedIndex) Select(*beat.Event) (string, error)                     { return string(f), nil }

// esGroup loads the wrapped Elasticsearch output against es.
func esGroup(t *testing.T, url, deadDir string) (outputs.Group, *observer.ObservedLogs) {
	t.Helper()
	cfg := config.MustNewConfigFrom(map[string]any{"hosts": []string{url}, "compression_level": 0})
	log, logs := logptest.NewTestingLoggerWithObserver(t, "")
	info := beat.Info{Beat: "teleportbeat", IndexPrefix: "teleportbeat", Version: "9.3.0", Logger: log}
	g, err := wrap("elasticsearch", outputReg["elasticsearch"], func() string { return deadDir })(fixedIndex("teleportbeat-test"), info, outputs.NewNilObserver(), cfg)
	require.NoError(t, err)
	return g, logs
}

// droppedLines counts libbeat's "The batch has been dropped" errors.
func droppedLines(logs *observer.ObservedLogs) int {
	return logs.FilterMessageSnippet("The batch has been dropped").Len()
}

func encode(t *testing.T, g outputs.Group, ev beat.Event) publisher.Event {
	t.Helper()
	entry, _ := g.EncoderFactory().EncodeEntry(publisher.Event{Content: ev})
	return entry.(publisher.Event)
}

// TestReadsTheEncodedEvent guards the reflection on libbeat's encoded
// event: it fails when the pinned beats version changes its fields.
func TestReadsTheEncodedEvent(t *testing.T) {
	srv := estest.New().Server()
	defer srv.Close()
	g, _ := esGroup(t, srv.URL, t.TempDir())
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e := encode(t, g, beat.Event{Timestamp: ts, Meta: mapstr.M{"_id": "uid-1"}, Fields: mapstr.M{"message": "hello"}})
	enc, err := readEncoded(e)
	require.NoError(t, err)
	require.Equal(t, "uid-1", enc.meta["_id"])
	require.True(t, ts.Equal(enc.timestamp))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(enc.encoding, &doc))
	require.Equal(t, "hello", doc["message"])
}

// TestAnEventRefusedAsTooLargeIsTruncatedAndKept: behind a proxy with a
// 64 KiB body limit, a 200 KB event refused alone is kept whole in the
// dead-letter file and retried, halved each time, until it is indexed,
// tagged, under its uid.
func TestAnEventRefusedAsTooLargeIsTruncatedAndKept(t *testing.T) {
	es, c, g, logs, dead := connectedBehindLimit(t, 64<<10)
	big := strings.Repeat("0123456789abcdef", 200_000/16)
	b := &recordingBatch{events: []publisher.Event{encode(t, g, beat.Event{
		Timestamp: time.Now(), Meta: mapstr.M{"_id": "uid-big"},
		Fields: mapstr.M{"event": mapstr.M{"id": "uid-big"}, "teleport": mapstr.M{"audit": mapstr.M{"db_query": big, "user": "alice"}}},
	})}}
	for attempt := 0; !b.acked; attempt++ {
		require.Less(t, attempt, maxCuts+1, "indexed within the cuts")
		require.False(t, b.dropped, "never dropped")
		b.retried = nil
		_ = c.Publish(context.Background(), b)
		if b.retried != nil {
			b = &recordingBatch{events: b.retried}
		}
	}
	doc, ok := es.Doc("uid-big")
	require.True(t, ok, "indexed under its uid")
	require.Contains(t, doc.Source["tags"], shrink.Tag)
	require.Equal(t, "alice", doc.Source["teleport"].(map[string]any)["audit"].(map[string]any)["user"])
	require.Greater(t, es.TooLarge(), 0)

	recs, err := deadletter.Read(dead)
	require.NoError(t, err)
	require.Len(t, recs, 1, "kept whole once")
	require.Equal(t, "uid-big", recs[0].EventID)
	require.Contains(t, string(recs[0].Doc), big)

	// The log says what happened to the event, by its uid, and not
	// libbeat's "The batch has been dropped": it was not.
	require.Zero(t, droppedLines(logs), "libbeat's drop line for an event that was sent again")
	require.Equal(t, 1, logs.FilterMessageSnippet("kept whole in the dead-letter file and sent again truncated").FilterField(zap.String("event_id", "uid-big")).Len())
}

// TestAnEventThatCannotBeMadeSmallEnoughIsKept: when even truncated the
// event does not pass, it ends in the dead-letter file only, and the
// batch is dropped (acknowledged) after that, not retried forever.
func TestAnEventThatCannotBeMadeSmallEnoughIsKept(t *testing.T) {
	es, c, g, logs, dead := connectedBehindLimit(t, 100) // nothing passes
	b := &recordingBatch{events: []publisher.Event{encode(t, g, beat.Event{Timestamp: time.Now(), Meta: mapstr.M{"_id": "uid-x"}, Fields: mapstr.M{"message": strings.Repeat("x", 10_000)}})}}
	for attempt := 0; !b.dropped; attempt++ {
		require.LessOrEqual(t, attempt, maxCuts+1)
		b.retried = nil
		_ = c.Publish(context.Background(), b)
		if b.retried != nil {
			b = &recordingBatch{events: b.retried}
		}
	}
	recs, err := deadletter.Read(dead)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "uid-x", recs[0].EventID)
	require.Zero(t, es.Count())
	// The last drop is one: libbeat's line stays, beside oversize's with the uid.
	require.Equal(t, 1, droppedLines(logs))
	require.Equal(t, 1, logs.FilterMessageSnippet("even truncated; it is only in the dead-letter file").FilterField(zap.String("event_id", "uid-x")).Len())
}

// connectedBehindLimit is the wrapped client of an output to Elasticsearch
// (the recorder) behind a proxy refusing bodies over limit bytes,
// connected, with its group, its logs and its dead-letter file.
func connectedBehindLimit(t *testing.T, limit int) (*estest.Recorder, *client, outputs.Group, *observer.ObservedLogs, string) {
	t.Helper()
	es := estest.New()
	es.SetMaxBodyBytes(limit)
	srv := es.Server()
	t.Cleanup(srv.Close)
	dead := filepath.Join(t.TempDir(), "dead-letter")
	g, logs := esGroup(t, srv.URL, dead)
	c := g.Clients[0].(*client)
	require.NoError(t, c.Connect(context.Background()))
	return es, c, g, logs, dead
}
