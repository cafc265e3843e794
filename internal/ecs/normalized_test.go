package ecs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/beats/v7/libbeat/common"
	"github.com/elastic/elastic-agent-libs/logp/logptest"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// TestMappedEventsAreAlreadyNormalized: the publisher clients turn off
// libbeat's event normalization (a full copy of every event, 10% of the
// beat's CPU in profiles) because the mapper builds events of the types
// normalization would produce. This holds for every sample event and every
// generated type: normalizing changes nothing.
func TestMappedEventsAreAlreadyNormalized(t *testing.T) {
	conv := common.NewGenericEventConverter(false, logptest.NewTestingLogger(t, ""))
	corpus, err := teleporttest.CorpusEvents()
	require.NoError(t, err)
	evs := append(corpus, teleporttest.NewGenerator(3).Events(2000, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Second)...)
	now := time.Now()
	for _, m := range []*Mapper{NewAuditMapper(), NewSessionMapper()} {
		for _, e := range evs {
			out := m.Map(decoded(t, e), now)
			require.Equal(t, out.Fields, conv.Convert(out.Fields.Clone()), "event %s (%s)", e.ID, e.Type)
		}
	}
}
