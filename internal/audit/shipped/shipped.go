package shipped

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Record remembers, on disk, every audit event acknowledged by the
// output: the 64-bit hash of its key (Hash), in one file per UTC day of
// the event's time (8 bytes an event: 8 MB a day for a million events). The
// recheck, the last sweep, reads each event again hours after its time and
// sends those Shipped does not know: events that became visible later than
// the sweeps of the late-event set look (late_events.max_delay), which
// would otherwise be lost without a trace. Files of days the recheck has
// passed are removed.
//
// A hash collision (two keys, one hash: about one in 10^7 among a million
// events) would make the recheck take a late event for a shipped one.
type Record struct {
	dir string

	mu    sync.Mutex
	days  map[int64]map[uint64]struct{} // loaded days (the recheck's), by day number
	err   error                         // the first write error, said once
	files map[int64]*os.File
}

// OpenRecord returns the log in dir (created, 0700, on the first write).
func OpenRecord(dir string) *Record {
	return &Record{dir: dir, days: map[int64]map[uint64]struct{}{}, files: map[int64]*os.File{}}
}

func dayOf(minute int64) int64 {
	m := minute * bucketWidth // seconds
	if m < 0 {
		return (m - 86399) / 86400
	}
	return m / 86400
}

func (s *Record) path(day int64) string {
	return filepath.Join(s.dir, time.Unix(day*86400, 0).UTC().Format("2006-01-02")+".hashes")
}

// Add records acknowledged events. A write error is returned once (the
// recheck may then send some of those events again: duplicates, not
// losses).
func (s *Record) Add(refs []Ref) error {
	if len(refs) == 0 {
		return nil
	}
	byDay := map[int64][]byte{}
	for _, r := range refs {
		if r == (Ref{}) {
			continue
		}
		d := dayOf(r.Minute)
		byDay[d] = binary.LittleEndian.AppendUint64(byDay[d], r.Hash)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, b := range byDay {
		if set, ok := s.days[d]; ok {
			for i := 0; i+8 <= len(b); i += 8 {
				set[binary.LittleEndian.Uint64(b[i:])] = struct{}{}
			}
		}
		f, err := s.file(d)
		if err == nil {
			_, err = f.Write(b)
		}
		if err != nil && s.err == nil {
			s.err = err
			return fmt.Errorf("record shipped events for the recheck: %w", err)
		}
	}
	return nil
}

func (s *Record) file(day int64) (*os.File, error) {
	if f, ok := s.files[day]; ok {
		return f, nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path(day), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	// Events are acknowledged roughly in time order: a few days open at
	// most. Close the oldest beyond that.
	if len(s.files) >= 4 {
		oldest := day
		for d := range s.files {
			oldest = min(oldest, d)
		}
		if oldest != day {
			s.files[oldest].Close()
			delete(s.files, oldest)
		}
	}
	s.files[day] = f
	return f, nil
}

// Has reports whether an event was acknowledged (its day's file is read
// on the first question about that day).
func (s *Record) Has(r Ref) (bool, error) {
	d := dayOf(r.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	set, ok := s.days[d]
	if !ok {
		var err error
		if set, err = s.load(d); err != nil {
			return false, err
		}
		// The recheck moves forward: two days at most in memory.
		for other := range s.days {
			if other < d-1 {
				delete(s.days, other)
			}
		}
		s.days[d] = set
	}
	_, has := set[r.Hash]
	return has, nil
}

func (s *Record) load(day int64) (map[uint64]struct{}, error) {
	set := map[uint64]struct{}{}
	f, err := os.Open(s.path(day))
	if errors.Is(err, os.ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	for i := 0; i+8 <= len(b); i += 8 {
		set[binary.LittleEndian.Uint64(b[i:])] = struct{}{}
	}
	return set, nil
}

// Forget removes the files (and loaded sets) of the days before t's.
func (s *Record) Forget(t time.Time) {
	cut := t.UTC().Unix() / 86400
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, f := range s.files {
		if d < cut {
			f.Close()
			delete(s.files, d)
		}
	}
	for d := range s.days {
		if d < cut {
			delete(s.days, d)
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".hashes")
		if !ok {
			continue
		}
		day, err := time.Parse("2006-01-02", name)
		if err == nil && day.Unix()/86400 < cut {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

// Close closes the open files.
func (s *Record) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for d, f := range s.files {
		errs = append(errs, f.Close())
		delete(s.files, d)
	}
	return errors.Join(errs...)
}
