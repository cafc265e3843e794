package cursor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/elastic/beats/v7/libbeat/statestore"
	"github.com/elastic/beats/v7/libbeat/statestore/backend/memlog"
	"github.com/elastic/elastic-agent-libs/logp"
)

// Registry is teleportbeat's registry: libbeat's statestore with the
// memlog backend, the same store Filebeat keeps its file offsets in.
type Registry struct {
	reg  *statestore.Registry
	name string
	root string
	log  *logp.Logger

	mu    sync.RWMutex
	store *statestore.Store // nil while a reopen after a failed write fails

	checkMu   sync.Mutex
	checkedAt time.Time // when the store's files were last seen on disk
	now       func() time.Time
}

// OpenRegistry opens (creating it if needed) the registry under root, a
// directory normally below path.data, with files created with fileMode.
func OpenRegistry(logger *logp.Logger, root string, fileMode os.FileMode, storeName string) (*Registry, error) {
	// The registry says how far the audit log was read: private to the
	// beat, like the files in it.
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create registry directory %s: %w", root, err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, fmt.Errorf("restrict registry directory %s to its owner: %w", root, err)
	}
	backend, err := memlog.New(logger.Named("registry"), memlog.Settings{Root: root, FileMode: fileMode})
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", root, err)
	}
	reg := statestore.NewRegistry(backend)
	st, err := reg.Get(storeName)
	if err != nil {
		reg.Close()
		return nil, fmt.Errorf("open registry store %s/%s: %w", root, storeName, err)
	}
	// memlog creates the store's directory group-accessible.
	if err := os.Chmod(filepath.Join(root, storeName), 0o700); err != nil {
		st.Close()
		reg.Close()
		return nil, fmt.Errorf("restrict registry directory %s to its owner: %w", filepath.Join(root, storeName), err)
	}
	return &Registry{reg: reg, name: storeName, root: root, log: logger, store: st, now: time.Now}, nil
}

// presenceCheckEvery is how often a write checks that the registry's files
// are still on disk.
const presenceCheckEvery = time.Second

// ensurePresent notices a registry removed from disk while the beat runs
// (memlog would go on writing to the removed files, and the position would
// be lost at the next start): it says so and writes the registry again,
// every key as the beat holds it in memory.
func (r *Registry) ensurePresent() {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	if now := r.now(); now.Sub(r.checkedAt) < presenceCheckEvery {
		return
	} else {
		r.checkedAt = now
	}
	meta := filepath.Join(r.root, r.name, "meta.json")
	if _, err := os.Stat(meta); !os.IsNotExist(err) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		return
	}
	kept := map[string]map[string]any{}
	_ = r.store.Each(func(key string, dec statestore.ValueDecoder) (bool, error) {
		v := map[string]any{}
		if err := dec.Decode(&v); err == nil {
			kept[key] = v
		}
		return true, nil
	})
	_ = r.store.Close()
	r.store = nil
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		r.log.Errorw("The registry was removed while teleportbeat runs, and cannot be created again", "registry", r.root, "error", err)
		return
	}
	st, err := r.reg.Get(r.name)
	if err != nil {
		r.log.Errorw("The registry was removed while teleportbeat runs, and cannot be opened again", "registry", r.root, "error", err)
		return
	}
	_ = os.Chmod(filepath.Join(r.root, r.name), 0o700)
	r.store = st
	for k, v := range kept {
		if err := st.Set(k, v); err != nil {
			r.log.Errorw("The registry was removed while teleportbeat runs; writing it again failed", "registry", r.root, "key", k, "error", err)
			return
		}
	}
	r.log.Warnw("The registry was removed while teleportbeat runs; it is written again from memory (to start over, stop teleportbeat before removing it)", "registry", r.root, "keys", len(kept))
}

// Close closes the registry.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.store != nil {
		err = r.store.Close()
	}
	r.reg.Close()
	return err
}

// read runs fn on the open store.
func (r *Registry) read(fn func(*statestore.Store) error) error {
	r.mu.RLock()
	st := r.store
	if st != nil {
		defer r.mu.RUnlock()
		return fn(st)
	}
	r.mu.RUnlock()
	if err := r.reopen(nil); err != nil {
		return err
	}
	return r.read(fn)
}

// write runs fn, a change, on the open store. After a failed write the
// store is reopened from disk: memlog keeps the first error of its log
// writer (a bufio.Writer) for good, so after one ENOSPC every second write
// would fail even once space has returned; and what the failed write left
// in memory was not written, so memory and disk agree again.
func (r *Registry) write(fn func(*statestore.Store) error) error {
	r.ensurePresent()
	r.mu.RLock()
	st := r.store
	var err error
	if st != nil {
		err = fn(st)
	}
	r.mu.RUnlock()
	if st == nil {
		if err := r.reopen(nil); err != nil {
			return err
		}
		return r.write(fn)
	}
	if err != nil {
		if rerr := r.reopen(st); rerr != nil {
			r.log.Warnw("Cannot reopen the registry after a failed write; retrying with the next write", "error", rerr)
		}
	}
	return err
}

// reopen replaces failed (nil: none open) with a freshly opened store,
// unless another caller already did.
func (r *Registry) reopen(failed *statestore.Store) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != failed {
		return nil
	}
	if failed != nil {
		_ = failed.Close() // flushing the broken log fails as the write did
		r.store = nil
	}
	st, err := r.reg.Get(r.name)
	if err != nil {
		return fmt.Errorf("reopen registry store %s/%s: %w", r.root, r.name, err)
	}
	r.store = st
	return nil
}

// record is a Position as stored in the registry (statestore encodes
// values with go-structform, which reads `struct` tags).
type record struct {
	WindowStart   string   `struct:"window_start"`
	WindowEnd     string   `struct:"window_end"`
	StartKey      string   `struct:"start_key"`
	Done          []string `struct:"done"`
	LastEventTime string   `struct:"last_event_time"`
	// Export progress (only while a day is read with the export API).
	Export       bool              `struct:"export"`
	ExportChunks map[string]string `struct:"export_chunks"`
	ExportDone   []string          `struct:"export_done_chunks"`
	// Sweep cursors of the late-event sweeps.
	Sweeps []string `struct:"sweeps"`
}

// Load returns the position stored under key, or nil if there is none.
// Keys lists the registry's keys that start with prefix.
func (r *Registry) Keys(prefix string) ([]string, error) {
	var out []string
	err := r.read(func(st *statestore.Store) error {
		return st.Each(func(key string, _ statestore.ValueDecoder) (bool, error) {
			if strings.HasPrefix(key, prefix) {
				out = append(out, key)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list the registry's keys: %w", err)
	}
	return out, nil
}

func (r *Registry) Load(key string) (*Position, error) {
	var rec record
	var ok bool
	err := r.read(func(st *statestore.Store) error {
		var err error
		if ok, err = st.Has(key); err != nil || !ok {
			return err
		}
		return st.Get(key, &rec)
	})
	if err != nil {
		return nil, fmt.Errorf("read registry key %s: %w", key, err)
	}
	if !ok {
		return nil, nil
	}
	pos := &Position{StartKey: rec.StartKey, Done: rec.Done}
	if rec.Export {
		pos.Export = &ExportProgress{Chunks: rec.ExportChunks, DoneChunks: rec.ExportDone}
	}
	if pos.WindowStart, err = time.Parse(time.RFC3339Nano, rec.WindowStart); err != nil {
		return nil, fmt.Errorf("registry key %s: bad window_start %q: %w", key, rec.WindowStart, err)
	}
	if rec.WindowEnd != "" {
		if pos.WindowEnd, err = time.Parse(time.RFC3339Nano, rec.WindowEnd); err != nil {
			return nil, fmt.Errorf("registry key %s: bad window_end %q: %w", key, rec.WindowEnd, err)
		}
	}
	if rec.LastEventTime != "" {
		if pos.LastEventTime, err = time.Parse(time.RFC3339Nano, rec.LastEventTime); err != nil {
			return nil, fmt.Errorf("registry key %s: bad last_event_time %q: %w", key, rec.LastEventTime, err)
		}
	}
	for i, s := range rec.Sweeps {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("registry key %s: bad sweeps.%d %q: %w", key, i, s, err)
		}
		pos.Sweeps = append(pos.Sweeps, t)
	}
	return pos, nil
}

// Save writes pos under key.
func (r *Registry) Save(key string, pos *Position) error {
	rec := record{WindowStart: pos.WindowStart.UTC().Format(time.RFC3339Nano), StartKey: pos.StartKey, Done: pos.Done}
	if e := pos.Export; e != nil {
		rec.Export, rec.ExportChunks, rec.ExportDone = true, e.Chunks, e.DoneChunks
	}
	if !pos.WindowEnd.IsZero() {
		rec.WindowEnd = pos.WindowEnd.UTC().Format(time.RFC3339Nano)
	}
	if !pos.LastEventTime.IsZero() {
		rec.LastEventTime = pos.LastEventTime.UTC().Format(time.RFC3339Nano)
	}
	for _, t := range pos.Sweeps {
		rec.Sweeps = append(rec.Sweeps, t.UTC().Format(time.RFC3339Nano))
	}
	if err := r.write(func(st *statestore.Store) error { return st.Set(key, rec) }); err != nil {
		return fmt.Errorf("write registry key %s under %s: %w", key, r.root, err)
	}
	return nil
}
