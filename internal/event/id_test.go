package event

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

func ev(t *testing.T, id string, fields map[string]any) *auditlogpb.EventUnstructured {
	t.Helper()
	s, err := structpb.NewStruct(fields)
	require.NoError(t, err)
	return &auditlogpb.EventUnstructured{Id: id, Type: "x", Unstructured: s}
}

func TestIDIsTheUidOrAContentHash(t *testing.T) {
	require.Equal(t, "u-1", IDOf(ev(t, "whatever", map[string]any{"uid": "u-1", "event": "x"})))

	// Newer Auth Services give an event without a uid a random id on each
	// read: the id must not depend on it.
	a := ev(t, "random-1", map[string]any{"event": "x", "time": "2025-01-01T00:00:00Z"})
	b := ev(t, "random-2", map[string]any{"event": "x", "time": "2025-01-01T00:00:00Z"})
	require.Equal(t, IDOf(a), IDOf(b))
	require.Len(t, IDOf(a), 64)
	require.True(t, SameProto(a, b))

	other := ev(t, "random-1", map[string]any{"event": "x", "time": "2025-01-01T00:00:01Z"})
	require.NotEqual(t, IDOf(a), IDOf(other))
	require.False(t, SameProto(a, other))
}
