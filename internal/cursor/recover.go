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

// Shared is a registry that several readers (one per Teleport cluster)
// keep their positions in, each under its own key: libbeat's store has one
// writer per directory, so it is opened once per beat.
type Shared struct {
	Registry *Registry
	// MovedAside is where an unreadable registry was moved ("" if none).
	MovedAside string
	// LastWrite is when the unreadable registry was last written (its
	// newest file), zero when unknown.
	LastWrite time.Time
	// err is why it was unreadable.
	err error

	log             *logp.Logger
	root, storeName string
}

// auditKeyPrefix is the prefix of every audit position's registry key
// (the cluster's name follows it).
const auditKeyPrefix = "teleport::audit::"

// AuditKey is the registry key of a cluster's audit position.
func AuditKey(cluster string) string { return auditKeyPrefix + cluster }

// OpenShared opens the registry under root and checks every audit
// position in it (and the positions under keys).
//
// A registry that cannot be read (truncated or corrupt files, a record that
// does not decode or makes no sense) must not stop the beat for good: under
// systemd that is a crash loop, and audit events pile up unread. It is moved
// aside, kept for inspection, and each position is recovered from its
// backup file (BackupSaver, Shared.Position); when that cannot be read
// either, the caller starts again from a horizon (Opened.LastWrite). An
// I/O error (a full disk, permissions) is returned as is: the registry is
// fine. Events already shipped are then read again; their _id (the
// Teleport uid) makes Elasticsearch keep one copy.
func OpenShared(logger *logp.Logger, root string, fileMode os.FileMode, storeName string, now time.Time, keys ...string) (*Shared, error) {
	s := &Shared{log: logger, root: root, storeName: storeName}
	reg, err := openChecked(logger, root, fileMode, storeName, keys)
	if err == nil {
		s.Registry = reg
		return s, nil
	}
	// An I/O error (permissions, a full disk, a failing device) says
	// nothing about the content: the position is kept and the error is
	// the user's to fix.
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, err
	}
	aside := asideName(root, now)
	if rerr := os.Rename(root, aside); rerr != nil {
		return nil, errors.Join(err, fmt.Errorf("move the unreadable registry aside: %w", rerr))
	}
	s.MovedAside, s.LastWrite, s.err = aside, newestFile(aside), err
	s.Registry, err = openChecked(logger, root, fileMode, storeName, keys)
	if err != nil {
		return nil, fmt.Errorf("open a new registry after moving the unreadable one to %s: %w", aside, err)
	}
	return s, nil
}

// Position is what the registry holds for key, with the attachment of
// its backup file; from the backup alone when the registry was moved
// aside.
func (s *Shared) Position(key string) Opened {
	if s.MovedAside == "" {
		pos, err := s.Registry.Load(key) // checked by OpenShared
		if err != nil {
			s.log.Errorw("The position cannot be read from the registry", "registry_key", key, "error", err)
		}
		_, attachment := loadBackup(s.log, BackupPath(s.root, s.storeName, key), false)
		return Opened{Registry: s.Registry, Position: pos, Attachment: attachment}
	}
	opened := Opened{Registry: s.Registry, MovedAside: s.MovedAside, LastWrite: s.LastWrite}
	backup, attachment := loadBackup(s.log, BackupPath(s.MovedAside, s.storeName, key), true)
	opened.Attachment = attachment
	if backup != nil {
		opened.Position, opened.FromBackup = backup, true
		s.log.Errorw("The registry cannot be read; it was moved aside and reading resumes from the backup of the last acknowledged position (events acknowledged since that backup are sent again; Elasticsearch keeps one copy of each)",
			"registry", s.root, "registry_key", key, "moved_to", s.MovedAside, "error", s.err, "window_start", backup.WindowStart, "last_event_time", backup.LastEventTime)
	} else {
		s.log.Errorw("The registry cannot be read, nor its backup; it was moved aside and reading starts over from teleportbeat.audit.start_time, or without one from teleportbeat.registry.recovery_horizon before the registry's last write. "+
			"Events shipped before are sent again and Elasticsearch keeps one copy of each (the _id is the event uid).",
			"registry", s.root, "registry_key", key, "moved_to", s.MovedAside, "error", s.err, "registry_last_written", s.LastWrite)
	}
	return opened
}

// Close closes the registry.
func (s *Shared) Close() error { return s.Registry.Close() }

// OpenPosition is OpenShared and Position for one key, for a reader that
// has the registry to itself (the registry is Opened.Registry, the
// caller's to close).
func OpenPosition(logger *logp.Logger, root string, fileMode os.FileMode, storeName, key string, now time.Time) (Opened, error) {
	s, err := OpenShared(logger, root, fileMode, storeName, now, key)
	if err != nil {
		return Opened{}, err
	}
	return s.Position(key), nil
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

// openChecked opens the registry and checks every audit position in it,
// and those under keys.
func openChecked(logger *logp.Logger, root string, fileMode os.FileMode, storeName string, keys []string) (*Registry, error) {
	reg, err := OpenRegistry(logger, root, fileMode, storeName)
	if err != nil {
		return nil, err
	}
	audit, err := reg.Keys(auditKeyPrefix)
	for _, key := range append(audit, keys...) {
		if err != nil {
			break
		}
		var pos *Position
		if pos, err = reg.Load(key); err == nil && pos != nil {
			if verr := pos.Validate(); verr != nil {
				err = fmt.Errorf("registry key %s: %w", key, verr)
			}
		}
	}
	if err != nil {
		reg.Close()
		return nil, err
	}
	return reg, nil
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
