package teleporttest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// roundTrip encodes msg with the pre-encoding codec and decodes it with
// protobuf's own decoder into a message of the same type.
func roundTrip[M proto.Message](t *testing.T, c preEncodedCodec, msg M, into M) M {
	t.Helper()
	data, err := c.Marshal(msg)
	require.NoError(t, err)
	require.NoError(t, proto.Unmarshal(data.Materialize(), into))
	return into
}

func TestPreEncodedCodecWritesWhatProtobufWrites(t *testing.T) {
	st := &Store{}
	evs := NewGenerator(7).Events(50, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Second)
	st.Add(evs...)
	c := preEncodedCodec{store: st}

	// A copy the store does not hold (the double's random-id answers) is
	// encoded on the spot.
	other := proto.Clone(evs[3].Proto()).(*auditlogpb.EventUnstructured)
	other.Id = "a copy"
	other.Unstructured.Fields["extra"] = structpb.NewStringValue("only here")

	page := &auditlogpb.EventsUnstructured{LastKey: "next-page"}
	for _, e := range evs {
		page.Items = append(page.Items, e.Proto())
	}
	page.Items = append(page.Items, other)
	got := roundTrip(t, c, page, &auditlogpb.EventsUnstructured{})
	require.True(t, proto.Equal(page, got), "search page differs after the codec")

	last := roundTrip(t, c, &auditlogpb.EventsUnstructured{Items: page.Items[:1]}, &auditlogpb.EventsUnstructured{})
	require.Empty(t, last.GetLastKey())
	require.True(t, proto.Equal(page.Items[0], last.Items[0]))

	exp := &auditlogpb.ExportEventUnstructured{Event: evs[10].Proto(), Cursor: "a1:11"}
	require.True(t, proto.Equal(exp, roundTrip(t, c, exp, &auditlogpb.ExportEventUnstructured{})))

	// Everything else goes through protobuf's codec.
	req := &auditlogpb.GetUnstructuredEventsRequest{Limit: 7, StartKey: "k"}
	data, err := c.Marshal(req)
	require.NoError(t, err)
	back := &auditlogpb.GetUnstructuredEventsRequest{}
	require.NoError(t, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data.Materialize())}, back))
	require.True(t, proto.Equal(req, back))
}

// The stored bytes are made once: a store answers with them, not with a
// fresh encoding, so that a change to the message after it was stored would
// not show (nothing in the double changes a stored message).
func TestStoreAnswersWithTheBytesMadeOnce(t *testing.T) {
	st := &Store{}
	e := NewGenerator(1).Events(1, time.Now(), time.Second)[0]
	st.Add(e)
	w, err := st.wireOf(e.Proto())
	require.NoError(t, err)
	require.Equal(t, &e.wire[0], &w[0], "the stored bytes, not a copy")
	require.Equal(t, len(w), e.size)
}
