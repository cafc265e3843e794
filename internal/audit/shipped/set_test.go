package shipped

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func refOf(key string, t time.Time) Ref { return RefOfKey(key, t, Hash("identity of "+key)) }

func TestSetTellsApartEventsThatShareAUid(t *testing.T) {
	s := NewSet(0)
	first := RefOfKey("shared", t0, 1)
	other := RefOfKey("shared", t0, 2)
	require.Equal(t, New, s.Read(first))
	require.Equal(t, Known, s.Read(first))
	require.Equal(t, OtherContent, s.Read(other), "the uid is known for another event")
	require.False(t, s.Has(other))
	s.Acked(first)
	require.Equal(t, OtherContent, s.Read(other))
}

// Two events with one uid seconds apart fall in two minutes half the time:
// the second is told apart all the same, whether the first was only read
// or acknowledged.
func TestSetTellsApartEventsThatShareAUidAcrossMinutes(t *testing.T) {
	s := NewSet(0)
	first := RefOfKey("shared", t0.Add(50*time.Second), 1)
	second := RefOfKey("shared", t0.Add(80*time.Second), 2)
	require.Equal(t, New, s.Read(first))
	require.Equal(t, OtherContent, s.Read(second), "pending in the minute before")
	s.Acked(first)
	require.Equal(t, OtherContent, s.Read(second), "acknowledged in the minute before")
	require.Equal(t, Known, s.Read(first), "the first is still itself")
	require.Equal(t, New, s.Read(RefOfKey("other", t0.Add(80*time.Second), 3)))
}

func TestSetKnowsWhatWasReadUntilPruned(t *testing.T) {
	s := NewSet(0)
	a := refOf("uid-a", t0)
	require.Equal(t, New, s.Read(a), "first read is new")
	require.Equal(t, Known, s.Read(a), "second read is known (pending)")
	require.True(t, s.Has(a))
	s.Acked(a)
	require.Equal(t, Known, s.Read(a), "known once acked")
	require.Equal(t, 1, s.Len())

	b := refOf("uid-b", t0.Add(3*time.Minute))
	require.Equal(t, New, s.Read(b))
	s.Prune(t0.Add(time.Minute))
	require.False(t, s.Has(a), "the minute of a is pruned")
	require.True(t, s.Has(b))
	require.False(t, s.Tracks(t0), "below the floor")
	require.Equal(t, New, s.Read(a), "below the floor, events are reported new")
	require.False(t, s.Has(a), "and not recorded")
	require.Equal(t, 1, s.Len())
}

func TestSetForgetsAnUnpublishedRead(t *testing.T) {
	s := NewSet(0)
	a := refOf("uid-a", t0)
	require.Equal(t, New, s.Read(a))
	s.Forget(a)
	require.False(t, s.Has(a))
	require.Equal(t, 0, s.Len())
	require.Equal(t, New, s.Read(a), "read again, it is new again")
}

func TestSetDropsTheOldestMinutesWhenFull(t *testing.T) {
	s := NewSet(10)
	for m := 0; m < 3; m++ {
		for i := 0; i < 4; i++ {
			require.Equal(t, New, s.Read(refOf(fmt.Sprintf("m%d-%d", m, i), t0.Add(time.Duration(m)*time.Minute))))
		}
	}
	// 12 events in three minutes: the first minute (4) is dropped.
	require.Equal(t, 8, s.Len())
	require.EqualValues(t, 4, s.Dropped())
	require.Equal(t, t0.Add(time.Minute), s.Floor())
	require.False(t, s.Tracks(t0))
	require.True(t, s.Has(refOf("m2-3", t0.Add(2*time.Minute))))
}

func TestTheEncodedSetKeepsOnlyAckedEvents(t *testing.T) {
	s := NewSet(0)
	acked, pending := refOf("acked", t0), refOf("pending", t0.Add(time.Minute))
	s.Read(acked)
	s.Acked(acked)
	s.Read(pending)
	s.Prune(t0.Add(-time.Hour))

	r := NewSet(0)
	require.NoError(t, r.UnmarshalBinary(s.Encoded()))
	require.True(t, r.Has(acked))
	require.False(t, r.Has(pending), "an event not acknowledged is not kept: a restart must send it")
	require.Equal(t, s.Floor(), r.Floor())
}

func TestAnEncodedSetThatDoesNotDecodeIsRefused(t *testing.T) {
	s := NewSet(0)
	s.Read(refOf("a", t0))
	s.Acked(refOf("a", t0))
	data := s.Encoded()
	for name, bad := range map[string][]byte{
		"truncated":     data[:len(data)-9],
		"trailing data": append(append([]byte(nil), data...), 0),
		"not ours":      []byte("{\"registry\": true}\n"),
		"empty":         nil,
	} {
		r := NewSet(0)
		require.ErrorIs(t, r.UnmarshalBinary(bad), ErrCorrupt, name)
		require.Equal(t, 0, r.Len(), name)
	}
}

func TestAStateFileOfEarlierReleasesStillLoads(t *testing.T) {
	pos, attachment, err := cursor.LoadBackup(filepath.Join("testdata", "state-before-backup-split.state"))
	require.NoError(t, err)
	require.JSONEq(t, `{"window_start":"2026-11-30T09:00:00Z","start_key":"k-1","last_event_time":"2026-11-30T10:01:00Z"}`, string(pos))
	s := NewSet(0)
	require.NoError(t, s.UnmarshalBinary(attachment))
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	require.True(t, s.Has(RefOfKey("3f1b2c4d-uid-a", at, 7)))
	require.True(t, s.Has(RefOfKey("3f1b2c4d-uid-b", at.Add(time.Minute), 8)))
	require.False(t, s.Has(RefOfKey("3f1b2c4d-uid-pending", at, 9)), "it was not acknowledged")
	require.Equal(t, 2, s.Len())
}
