package cursor

import (
	"fmt"
	"strings"
	"time"

	"github.com/elastic/beats/v7/libbeat/statestore"
)

// Session recording states.
const (
	SessionPending = "pending" // to stream, from NextIndex on
	SessionDone    = "done"    // every event acknowledged
	SessionMissing = "missing" // the recording never appeared
)

// SessionState is the progress of one session recording.
type SessionState struct {
	ID         string
	NextIndex  int64 // the first index not yet acknowledged
	UploadTime time.Time
	State      string
	Updated    time.Time
}

type sessionRecord struct {
	NextIndex  int64  `struct:"next_index"`
	UploadTime string `struct:"upload_time"`
	State      string `struct:"state"`
	Updated    string `struct:"updated"`
}

// SaveSession writes a session's state under prefix+id.
func (r *Registry) SaveSession(prefix string, s SessionState) error {
	rec := sessionRecord{NextIndex: s.NextIndex, State: s.State, Updated: s.Updated.UTC().Format(time.RFC3339Nano)}
	if !s.UploadTime.IsZero() {
		rec.UploadTime = s.UploadTime.UTC().Format(time.RFC3339Nano)
	}
	if err := r.write(func(st *statestore.Store) error { return st.Set(prefix+s.ID, rec) }); err != nil {
		return fmt.Errorf("write session %s to the registry under %s: %w", s.ID, r.root, err)
	}
	return nil
}

// RemoveSession forgets a session.
func (r *Registry) RemoveSession(prefix, id string) error {
	if err := r.write(func(st *statestore.Store) error { return st.Remove(prefix + id) }); err != nil {
		return fmt.Errorf("remove session %s from the registry: %w", id, err)
	}
	return nil
}

// LoadSession returns a session's state, if the registry has it.
func (r *Registry) LoadSession(prefix, id string) (SessionState, bool, error) {
	var rec sessionRecord
	var ok bool
	err := r.read(func(st *statestore.Store) error {
		var err error
		if ok, err = st.Has(prefix + id); err != nil || !ok {
			return err
		}
		return st.Get(prefix+id, &rec)
	})
	if err != nil {
		return SessionState{}, false, fmt.Errorf("read session %s from the registry: %w", id, err)
	}
	if !ok {
		return SessionState{}, false, nil
	}
	return decodeSession(id, rec), true, nil
}

// Sessions returns every session stored under prefix.
func (r *Registry) Sessions(prefix string) ([]SessionState, error) {
	var out []SessionState
	err := r.read(func(st *statestore.Store) error {
		return st.Each(func(key string, dec statestore.ValueDecoder) (bool, error) {
			if !strings.HasPrefix(key, prefix) {
				return true, nil
			}
			var rec sessionRecord
			if err := dec.Decode(&rec); err != nil {
				return false, fmt.Errorf("read registry key %s: %w", key, err)
			}
			out = append(out, decodeSession(strings.TrimPrefix(key, prefix), rec))
			return true, nil
		})
	})
	return out, err
}

func decodeSession(id string, rec sessionRecord) SessionState {
	s := SessionState{ID: id, NextIndex: rec.NextIndex, State: rec.State}
	s.UploadTime, _ = time.Parse(time.RFC3339Nano, rec.UploadTime)
	s.Updated, _ = time.Parse(time.RFC3339Nano, rec.Updated)
	return s
}
