package cursor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
)

// OpenPosition opens the registry under root and reads the position stored
// under key (nil on a first run).
//
// A registry that cannot be read (truncated or corrupt files, a record that
// does not decode or makes no sense) must not stop the beat for good: under
// systemd that is a crash loop, and audit events pile up unread. It is moved
// aside, kept for inspection, and the beat starts over from
// teleportbeat.audit.start_time. An I/O error
// (a full disk, permissions) is returned as is: the registry is fine. Events already shipped are then read again;
// their _id (the Teleport uid) makes Elasticsearch keep one copy.
func OpenPosition(logger *logp.Logger, root string, fileMode os.FileMode, storeName, key string, now time.Time) (*Registry, *Position, error) {
	reg, pos, err := openPosition(logger, root, fileMode, storeName, key)
	if err == nil {
		return reg, pos, nil
	}
	// An I/O error (permissions, a full disk, a failing device) says
	// nothing about the content: the position is kept and the error is
	// the user's to fix.
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, nil, err
	}
	aside := fmt.Sprintf("%s.corrupt-%s", root, now.UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(root, aside); rerr != nil {
		return nil, nil, errors.Join(err, fmt.Errorf("move the unreadable registry aside: %w", rerr))
	}
	logger.Errorw("The registry cannot be read; it was moved aside and reading starts over from teleportbeat.audit.start_time. "+
		"Events shipped before are sent again and Elasticsearch keeps one copy of each (the _id is the event uid). "+
		"Set teleportbeat.audit.start_time to cover the events since the last run if it is not set.",
		"registry", root, "moved_to", aside, "error", err)
	reg, pos, err = openPosition(logger, root, fileMode, storeName, key)
	if err != nil {
		return nil, nil, fmt.Errorf("open a new registry after moving the unreadable one to %s: %w", aside, err)
	}
	return reg, pos, nil
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
