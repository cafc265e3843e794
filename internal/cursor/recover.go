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

	"github.com/teleportbeat/teleportbeat/internal/late"
)

// Opened is what OpenPosition found.
type Opened struct {
	Registry *Registry
	// Position is the stored position: nil on a first run, and after an
	// unreadable registry whose backup could not be read either.
	Position *Position
	// MovedAside is where an unreadable registry was moved ("" if none).
	MovedAside string
	// FromBackup is set when Position comes from the backup in the
	// late-events state file, the registry being unreadable.
	FromBackup bool
	// LastWrite is when the unreadable registry was last written (its
	// newest file), zero when unknown.
	LastWrite time.Time
}

// StatePath is the late-events state file of the registry key under root:
// it holds the events recently shipped and a backup of the position.
func StatePath(root, storeName, key string) string {
	return filepath.Join(root, storeName+"-late", fileName(key)+".state")
}

// ShippedDir is the directory of the record of shipped events (late.Shipped)
// of the registry key, beside the state file.
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
// under key (nil on a first run) and loads the late-events state of that
// key into set.
//
// A registry that cannot be read (truncated or corrupt files, a record that
// does not decode or makes no sense) must not stop the beat for good: under
// systemd that is a crash loop, and audit events pile up unread. It is moved
// aside, kept for inspection, and the position is recovered from the backup
// the late-events state file keeps; when that cannot be read either, the
// caller starts again from a horizon (Opened.LastWrite). An I/O error (a
// full disk, permissions) is returned as is: the registry is fine. Events
// already shipped are then read again; their _id (the Teleport uid) makes
// Elasticsearch keep one copy.
func OpenPosition(logger *logp.Logger, root string, fileMode os.FileMode, storeName, key string, now time.Time, set *late.Set) (Opened, error) {
	reg, pos, err := openPosition(logger, root, fileMode, storeName, key)
	if err == nil {
		loadState(logger, StatePath(root, storeName, key), set, false)
		return Opened{Registry: reg, Position: pos}, nil
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
	if backup := loadState(logger, StatePath(aside, storeName, key), set, true); backup != nil {
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

// loadState loads the late-events state file at path into set and returns
// the position backed up in it (nil when there is none that validates).
// A state file that cannot be read is logged and ignored: sweeps then may
// send a little of the recent past again.
func loadState(logger *logp.Logger, path string, set *late.Set, wantPosition bool) *Position {
	if set == nil {
		set = late.NewSet(0)
	}
	raw, err := late.LoadState(path, set)
	if err != nil {
		logger.Warnw("The late-events state file cannot be read; sweeps of the recent past may send some events again (Elasticsearch keeps one copy of each)", "file", path, "error", err)
		return nil
	}
	if !wantPosition || len(raw) == 0 {
		return nil
	}
	var pos Position
	if err := json.Unmarshal(raw, &pos); err != nil {
		logger.Warnw("The position backed up in the late-events state file does not decode", "file", path, "error", err)
		return nil
	}
	if err := pos.Validate(); err != nil {
		logger.Warnw("The position backed up in the late-events state file is not valid", "file", path, "error", err)
		return nil
	}
	return &pos
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
