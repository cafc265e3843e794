package cursor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
)

// The backup file keeps, beside libbeat's registry, a copy of the last
// acknowledged position, from which a registry that can no longer be read
// is recovered (OpenPosition), and an attachment the cursor does not read:
// the reader's record of the events shipped recently (the late-event set),
// which a restart needs to catch late events without sending the recent
// past again.
//
// Layout: the magic line, the position's length (uint32, little-endian)
// and JSON, the attachment, then a CRC-32 (IEEE) of everything before it.
// (The magic line is the one the file had when the late-event set wrote
// it, in this very layout: files written before upgrading still load.)
// It is written to a temporary file, synced and renamed over the old one,
// so that a crash leaves either the old or the new file.
const backupMagic = "teleportbeat-late-events v2\n"

// ErrCorruptBackup reports a backup file that does not decode.
var ErrCorruptBackup = errors.New("position backup file is corrupt")

// BackupPath is the backup file of the registry key under root.
func BackupPath(root, storeName, key string) string {
	return filepath.Join(root, storeName+"-late", fileName(key)+".state")
}

// SaveBackup writes position (JSON) and attachment to path.
func SaveBackup(path string, position, attachment []byte, perm os.FileMode) error {
	var b bytes.Buffer
	b.WriteString(backupMagic)
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(position))))
	b.Write(position)
	b.Write(attachment)
	b.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	_, err = tmp.Write(b.Bytes())
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadBackup reads the backup file at path: the position JSON and the
// attachment. A missing file is (nil, nil, nil); one that does not decode
// is ErrCorruptBackup.
func LoadBackup(path string) (position, attachment []byte, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) < len(backupMagic)+8 || string(data[:len(backupMagic)]) != backupMagic {
		return nil, nil, fmt.Errorf("%s: %w: not a position backup file", path, ErrCorruptBackup)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, fmt.Errorf("%s: %w: checksum mismatch", path, ErrCorruptBackup)
	}
	rest := body[len(backupMagic):]
	n := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(n) > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%s: %w: a position of %d bytes in %d", path, ErrCorruptBackup, n, len(rest))
	}
	return rest[:n], rest[n:], nil
}

// BackupSaver returns the Committer's hook that writes the backup file
// with each saved position, at most every `every` and once more at the
// end; attach (nil: none) gives the attachment to write with it. A failure
// is said once, and its end once; what a crash loses of the file is only
// sent again.
func BackupSaver(log *logp.Logger, path string, perm os.FileMode, every time.Duration, attach func() []byte) func(*Position, bool) {
	var last time.Time
	failing := false
	return func(pos *Position, final bool) {
		if !final && time.Since(last) < every {
			return
		}
		last = time.Now()
		raw, err := json.Marshal(pos)
		if err == nil {
			var a []byte
			if attach != nil {
				a = attach()
			}
			err = SaveBackup(path, raw, a, perm)
		}
		switch {
		case err != nil && !failing:
			failing = true
			log.Warnw("Cannot write the position backup file (a copy of the position and the events shipped recently); retrying with the next position", "file", path, "error", err)
		case err == nil && failing:
			failing = false
			log.Infow("The position backup file is written again", "file", path)
		}
	}
}
