package espipeline

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp/logptest"
	"github.com/elastic/elastic-agent-libs/mapstr"
)

func processor(t *testing.T, yml string) *Processor {
	t.Helper()
	c, err := config.NewConfigWithYAML([]byte(yml), "test")
	require.NoError(t, err)
	p, err := New(c, logptest.NewTestingLogger(t, ""))
	require.NoError(t, err)
	return p
}

func pipelineOf(t *testing.T, p *Processor, e beat.Event) any {
	t.Helper()
	out, err := p.Run(&e)
	require.NoError(t, err)
	v, _ := out.Meta.GetValue("pipeline")
	return v
}

// teleportbeat's events always carry metadata (their _id): the output's
// pipeline settings reach them through the processor, as libbeat would
// apply them to an event without metadata.
func TestOutputPipelineSettingsReachEventsWithMetadata(t *testing.T) {
	withID := func(fields mapstr.M) beat.Event {
		return beat.Event{Meta: mapstr.M{"_id": "u-1"}, Fields: fields}
	}
	require.Equal(t, "geo", pipelineOf(t, processor(t, "pipeline: Geo\n"), withID(nil)), "lower-cased, as libbeat does")

	p := processor(t, "pipeline: \"p-%{[event.action]}\"\n")
	require.Equal(t, "p-user.login", pipelineOf(t, p, withID(mapstr.M{"event": mapstr.M{"action": "user.login"}})))

	p = processor(t, "pipelines:\n  - pipeline: logins\n    when.equals.event.action: user.login\npipeline: other\n")
	require.Equal(t, "logins", pipelineOf(t, p, withID(mapstr.M{"event": mapstr.M{"action": "user.login"}})))
	require.Equal(t, "other", pipelineOf(t, p, withID(mapstr.M{"event": mapstr.M{"action": "exec"}})))

	e := withID(nil)
	e.Meta["pipeline"] = "chosen"
	require.Equal(t, "chosen", pipelineOf(t, processor(t, "pipeline: geo\n"), e), "an event's own pipeline stays")

	require.Equal(t, "geo", pipelineOf(t, processor(t, "pipeline: geo\n"), beat.Event{}), "an event without metadata gets some")
}

func TestNoPipelineNoProcessor(t *testing.T) {
	require.Nil(t, processor(t, "hosts: [localhost]\n"))
	require.Nil(t, processor(t, "pipeline: \"\"\n"))
}
