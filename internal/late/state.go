package late

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// The state file keeps, beside libbeat's registry, what a restart needs to
// catch late events without sending the recent past again (the acked
// events of the Set) and a copy of the last acknowledged position, from
// which a registry that can no longer be read is recovered.
//
// Layout: the magic line, then little-endian: the position's length and
// JSON, the set's floor (minute), the number of minutes, and for each its
// minute, the count of values and the values (key hash and identity
// pairs); then a CRC-32 (IEEE) of everything before it.
// It is written to a temporary file, synced and renamed over the old one,
// so that a crash leaves either the old or the new file.
const magic = "teleportbeat-late-events v2\n"

// ErrCorrupt reports a state file that does not decode.
var ErrCorrupt = errors.New("late-events state file is corrupt")

// SaveState writes the position (JSON) and the acked events of s to path.
func SaveState(path string, position []byte, s *Set, perm os.FileMode) error {
	buckets, floor := s.snapshot()
	var b bytes.Buffer
	b.WriteString(magic)
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, uint32(len(position))))
	b.Write(position)
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
	b.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadState reads the state file at path into s (which must be empty) and
// returns the position JSON it holds. A missing file is (nil, nil); one
// that does not decode is ErrCorrupt, and s is left empty.
func LoadState(path string, s *Set) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	pos, buckets, floor, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.restore(buckets, floor)
	return pos, nil
}

func decodeState(data []byte) ([]byte, map[int64][]uint64, int64, error) {
	le := binary.LittleEndian
	if len(data) < len(magic)+4 || string(data[:len(magic)]) != magic {
		return nil, nil, 0, fmt.Errorf("%w: not a late-events state file", ErrCorrupt)
	}
	body, sum := data[:len(data)-4], le.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := bufio.NewReader(bytes.NewReader(body[len(magic):]))
	var n32 uint32
	var n64 uint64
	read := func(v any) error { return binary.Read(r, le, v) }
	if err := read(&n32); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	pos := make([]byte, n32)
	if _, err := io.ReadFull(r, pos); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := read(&n64); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	floor := int64(n64)
	var nb uint32
	if err := read(&nb); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	buckets := make(map[int64][]uint64, nb)
	for i := uint32(0); i < nb; i++ {
		var k uint64
		var c uint32
		if err := read(&k); err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if err := read(&c); err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if int(c) > len(body)/8 {
			return nil, nil, 0, fmt.Errorf("%w: minute with %d events in a file of %d bytes", ErrCorrupt, c, len(data))
		}
		hs := make([]uint64, c)
		if err := read(hs); err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		buckets[int64(k)] = hs
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, nil, 0, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	return pos, buckets, floor, nil
}
