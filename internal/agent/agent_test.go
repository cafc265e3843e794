package agent

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/common/fmtstr"
	"github.com/elastic/elastic-agent-client/v7/pkg/client"
	"github.com/elastic/elastic-agent-client/v7/pkg/proto"
	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/input"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

func stream(t *testing.T, id, dataset string, src map[string]any) *proto.Stream {
	t.Helper()
	s, err := structpb.NewStruct(src)
	require.NoError(t, err)
	return &proto.Stream{Id: id, DataStream: &proto.DataStream{Dataset: dataset, Type: "logs"}, Source: s}
}

func unit(streams ...*proto.Stream) *proto.UnitExpectedConfig {
	return &proto.UnitExpectedConfig{
		Id: "teleport-unit-1", Type: InputType, Name: "teleport-1",
		DataStream: &proto.DataStream{Namespace: "prod"},
		Streams:    streams,
	}
}

// connection is the Teleport connection of the streams, with an identity
// file that exists (the configuration check reads it).
func connection(t *testing.T) map[string]any {
	t.Helper()
	tp, id := teleporttest.StartWithIdentity(t, t.TempDir())
	return map[string]any{"addr": []any{tp.Addr()}, "identity_file": id}
}

func TestTransformOneUnitIsOneShipper(t *testing.T) {
	conn := connection(t)
	u := unit(
		stream(t, "audit-1", AuditDataset, map[string]any{"teleport": conn, "audit": map[string]any{"batch_size": 500.0}}),
		stream(t, "session-1", SessionDataset, map[string]any{"teleport": conn, "sessions": map[string]any{"concurrency": 2.0}}),
	)
	cfgs, err := Transform(u, &client.AgentInfo{ID: "agent-1", Version: "9.3.0"})
	require.NoError(t, err)
	require.Len(t, cfgs, 1)

	var got input.UnitConfig
	require.NoError(t, cfgs[0].Config.Unpack(&got))
	require.Equal(t, "teleport-unit-1", got.ID)
	for want, idx := range map[string]*fmtstr.EventFormatString{"logs-teleportbeat.audit-prod": &got.AuditStream.Index, "logs-teleportbeat.session-prod": &got.SessionStream.Index} {
		s, err := idx.Run(&beat.Event{})
		require.NoError(t, err)
		require.Equal(t, want, s)
	}
	require.NotEmpty(t, got.AuditStream.Processors, "data_stream, event.dataset and agent fields are added by processors")

	var section struct {
		Teleport struct {
			Addr         []string `config:"addr"`
			IdentityFile string   `config:"identity_file"`
		} `config:"teleport"`
		Audit struct {
			BatchSize int `config:"batch_size"`
		} `config:"audit"`
		Sessions struct {
			Enabled     bool `config:"enabled"`
			Concurrency int  `config:"concurrency"`
		} `config:"sessions"`
	}
	require.NoError(t, got.Teleportbeat.Unpack(&section))
	require.Equal(t, []string{conn["addr"].([]any)[0].(string)}, section.Teleport.Addr)
	require.Equal(t, 500, section.Audit.BatchSize)
	require.True(t, section.Sessions.Enabled)
	require.Equal(t, 2, section.Sessions.Concurrency)
	for _, k := range routingKeys {
		has, _ := got.Teleportbeat.Has(k, -1)
		require.False(t, has, "routing key %s does not reach the teleportbeat section", k)
	}

	// The input factory accepts what the transform makes.
	f := &input.Factory{Log: logptest.NewTestingLogger(t, ""), Info: beat.Info{Beat: "teleportbeat", Version: "9.3.0"}}
	require.NoError(t, f.CheckConfig(cfgs[0].Config))
}

func TestTransformWithoutSessionStreamTurnsRecordingsOff(t *testing.T) {
	conn := connection(t)
	cfgs, err := Transform(unit(stream(t, "audit-1", AuditDataset, map[string]any{"teleport": conn})), nil)
	require.NoError(t, err)
	enabled, err := cfgs[0].Config.Bool("teleportbeat.sessions.enabled", -1)
	require.NoError(t, err)
	require.False(t, enabled)
}

func TestTransformErrorsNameTheProblem(t *testing.T) {
	conn := connection(t)
	_, err := Transform(unit(stream(t, "session-1", SessionDataset, map[string]any{"teleport": conn})), nil)
	require.ErrorContains(t, err, "the teleportbeat.session stream needs the teleportbeat.audit stream")

	_, err = Transform(unit(stream(t, "x-1", "teleport.other", map[string]any{"teleport": conn})), nil)
	require.ErrorContains(t, err, `stream x-1 has data stream "teleport.other"`)

	u := unit(stream(t, "audit-1", AuditDataset, map[string]any{"teleport": conn}))
	u.Type = "filestream"
	_, err = Transform(u, nil)
	require.ErrorContains(t, err, `input type "filestream"`)

	_, err = Transform(unit(), nil)
	require.ErrorContains(t, err, "no streams")

	// A bad value is reported by key, by the factory, before anything runs.
	cfgs, err := Transform(unit(stream(t, "audit-1", AuditDataset, map[string]any{"teleport": conn, "audit": map[string]any{"batch_size": -1.0}})), nil)
	require.NoError(t, err)
	f := &input.Factory{Log: logptest.NewTestingLogger(t, ""), Info: beat.Info{Beat: "teleportbeat"}}
	require.ErrorContains(t, f.CheckConfig(cfgs[0].Config), "teleportbeat.audit.batch_size")
}
