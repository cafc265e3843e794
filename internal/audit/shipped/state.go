package shipped

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// A Set is kept across restarts as the attachment of the cursor's
// position backup file (cursor.SaveBackup): what a restart needs to catch
// late events without sending the recent past again (the acknowledged
// events), nothing else.
//
// Encoding, little-endian: the set's floor (minute), the number of
// minutes, and for each its minute, the count of values and the values
// (key hash and identity pairs).

// ErrCorrupt reports an encoded set that does not decode.
var ErrCorrupt = errors.New("the recorded late-event set is corrupt")

// MarshalBinary encodes the acknowledged events of s.
func (s *Set) MarshalBinary() ([]byte, error) {
	buckets, floor := s.snapshot()
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint64(nil, uint64(floor)))
	keys := make([]int64, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	b.Write(le.AppendUint32(nil, uint32(len(keys))))
	for _, k := range keys {
		hs := buckets[k]
		b.Write(le.AppendUint64(nil, uint64(k)))
		b.Write(le.AppendUint32(nil, uint32(len(hs))))
		for _, h := range hs {
			b.Write(le.AppendUint64(nil, h))
		}
	}
	return b.Bytes(), nil
}

// Encoded is s encoded (MarshalBinary), for cursor.BackupSaver.
func (s *Set) Encoded() []byte {
	b, _ := s.MarshalBinary()
	return b
}

// UnmarshalBinary loads encoded acknowledged events into s, which must be
// empty; on an error (ErrCorrupt) s is left empty.
func (s *Set) UnmarshalBinary(data []byte) error {
	buckets, floor, err := decodeSet(data)
	if err != nil {
		return err
	}
	s.restore(buckets, floor)
	return nil
}

func decodeSet(data []byte) (map[int64][]uint64, int64, error) {
	le := binary.LittleEndian
	r := bufio.NewReader(bytes.NewReader(data))
	var n64 uint64
	read := func(v any) error { return binary.Read(r, le, v) }
	if err := read(&n64); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	floor := int64(n64)
	var nb uint32
	if err := read(&nb); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if int64(nb) > int64(len(data)/12) { // each minute takes 12 bytes at least
		return nil, 0, fmt.Errorf("%w: %d minutes in %d bytes", ErrCorrupt, nb, len(data))
	}
	buckets := make(map[int64][]uint64, nb)
	for i := uint32(0); i < nb; i++ {
		var k uint64
		var c uint32
		if err := read(&k); err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if err := read(&c); err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if int(c) > len(data)/8 {
			return nil, 0, fmt.Errorf("%w: minute with %d events in %d bytes", ErrCorrupt, c, len(data))
		}
		hs := make([]uint64, c)
		if err := read(hs); err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		buckets[int64(k)] = hs
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, 0, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	return buckets, floor, nil
}
