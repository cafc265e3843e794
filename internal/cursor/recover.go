package cursor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
)

// Opened is what OpenPosition found.
type Opened struct {
	Registry *Registry
	// Position is the stored position: nil on a first run, and after an
	// unreadable registry whose backup could not be read either.
	Position *Position
	// MovedAside is where an unreadable registry was moved ("" if none).
	MovedAside string
	// FromBackup is set when Position comes from the backup file, the
	// registry being unreadable.
	FromBackup bool
	// Attachment is what was saved with the backup (BackupSaver's attach):
	// from the registry's backup file, or the moved-aside one's.
	Attachment []byte
	// LastWrite is when the unreadable registry was last written (its
	// newest file), zero when unknown.
	LastWrite time.Time
}

// ShippedDir is the directory of the record of shipped events (shipped.Record)
// of the registry key, beside its backup file.
func ShippedDir(root, storeName, key string) string {
	return filepath.Join(root, storeName+"-late", fileName(key)+".shipped")
}

// fileName is a registry key as a file name.
func fileName(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, key)
}

// OpenPosition opens the registry under root, reads the position stored
// under key (nil on a first run) and the attachment of its backup file.
//
// A registry that cannot be read (truncated or corrupt files, a record that
// does not decode or makes no sense) must not stop the beat for good: under
// systemd that is a crash loop, and audit events pile up unread. It is moved
// aside, kept for inspection, and the position is recovered from its
// backup file (BackupSaver); when that cannot be read either, the
// caller starts again from a horizon (Opened.LastWrite). An I/O error (a
// full disk, permissions) is returned as is: the registry is fine. Events
// already shipped are then read again; their _id (the Teleport uid) makes
// Elasticsearch keep one copy.
func OpenPosition(logger *logp.Logger, root string, fileMode os.FileMode, storeName, key string, now time.Time) (Opened, error) {
	reg, pos, err := openPosition(logger, root, fileMode, storeName, key)
	if err == nil {
		_, attachment := loadBackup(logger, BackupPath(root, storeName, key), false)
		return Opened{Registry: reg, Position: pos, Attachment: attachment}, nil
	}
	// An I/O error (permissions, a full disk, a failing device) says
	// nothing about the content: the position is kept and the error is
	// the user's to fix.
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return Opened{}, err
	}
	aside := asideName(root, now)
	if rerr := os.Rename(root, aside); rerr != nil {
		return Opened{}, errors.Join(err, fmt.Errorf("move the unreadable registry aside: %w", rerr))
	}
	opened := Opened{MovedAside: aside, LastWrite: newestFile(aside)}
	backup, attachment := loadBackup(logger, BackupPath(aside, storeName, key), true)
	opened.Attachment = attachment
	if backup != nil {
		opened.Position, opened.FromBackup = backup, true
		logger.Errorw("The registry cannot be read; it was moved aside and reading resumes from the backup of the last acknowledged position (events acknowledged since that backup are sent again; Elasticsearch keeps one copy of each)",
			"registry", root, "moved_to", aside, "error", err, "window_start", backup.WindowStart, "last_event_time", backup.LastEventTime)
	} else {
		logger.Errorw("The registry cannot be read, nor its backup; it was moved aside and reading starts over from teleportbeat.audit.start_time, or without one from teleportbeat.registry.recovery_horizon before the registry's last write. "+
			"Events shipped before are sent again and Elasticsearch keeps one copy of each (the _id is the event uid).",
			"registry", root, "moved_to", aside, "error", err, "registry_last_written", opened.LastWrite)
	}
	reg, _, err = openPosition(logger, root, fileMode, storeName, key)
	if err != nil {
		return Opened{}, fmt.Errorf("open a new registry after moving the unreadable one to %s: %w", aside, err)
	}
	opened.Registry = reg
	return opened, nil
}

// loadBackup reads the backup file at path: the position backed up in it
// (nil when there is none that validates, or !wantPosition) and its
// attachment. A file that cannot be read is logged and ignored: the
// position is the registry's, and sweeps may send a little of the recent
// past again.
func loadBackup(logger *logp.Logger, path string, wantPosition bool) (*Position, []byte) {
	raw, attachment, err := LoadBackup(path)
	if err != nil {
		logger.Warnw("The position backup file cannot be read; sweeps of the recent past may send some events again (Elasticsearch keeps one copy of each)", "file", path, "error", err)
		return nil, nil
	}
	if !wantPosition || len(raw) == 0 {
		return nil, attachment
	}
	var pos Position
	if err := json.Unmarshal(raw, &pos); err != nil {
		logger.Warnw("The position in the backup file does not decode", "file", path, "error", err)
		return nil, attachment
	}
	if err := pos.Validate(); err != nil {
		logger.Warnw("The position in the backup file is not valid", "file", path, "error", err)
		return nil, attachment
	}
	return &pos, attachment
}

// newestFile is the modification time of the newest file under dir.
func newestFile(dir string) time.Time {
	var newest time.Time
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	return newest
}

func openPosition(logger *logp.Logger, root string, fileMode os.FileMode, storeName, key string) (*Registry, *Position, error) {
	reg, err := OpenRegistry(logger, root, fileMode, storeName)
	if err != nil {
		return nil, nil, err
	}
	pos, err := reg.Load(key)
	if err == nil && pos != nil {
		if verr := pos.Validate(); verr != nil {
			err = fmt.Errorf("registry key %s: %w", key, verr)
		}
	}
	if err != nil {
		reg.Close()
		return nil, nil, err
	}
	return reg, pos, nil
}

// asideName is where an unreadable registry is moved: named after the
// time, with a count when a registry was already moved aside in that
// second (a registry broken again at once must not stop the beat).
func asideName(root string, now time.Time) string {
	base := fmt.Sprintf("%s.corrupt-%s", root, now.UTC().Format("20060102T150405Z"))
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}
