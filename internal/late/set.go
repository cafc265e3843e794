// Package late keeps what teleportbeat needs to catch audit events that
// become visible in Teleport after the reader has passed their time: the
// set of events shipped recently (so that a sweep of the recent past sends
// only what is new), its persistence, and the measure of how far Teleport's
// event times lag behind the local clock.
package late

import (
	"sort"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// bucketWidth groups events by their time: the set drops whole buckets,
// oldest first.
const bucketWidth = int64(time.Minute / time.Second)

// Set remembers the events shipped recently: a 64-bit hash of each event's
// key (its uid), grouped by the minute of its time. An event is "pending"
// from the moment it is read until the output acknowledged it, then
// "acked"; only acked events are persisted, so that a restart never skips
// an event that was read but not delivered.
//
// Memory is bounded by max events (about 16 bytes each). When it is full,
// the oldest minute is forgotten and Floor rises: sweeps must not read
// below it, since they could no longer tell shipped events from late ones.
// Dropped counts the events forgotten that way.
type Set struct {
	mu      sync.Mutex
	buckets map[int64]*bucket // minute (Unix seconds / 60) -> events
	n       int
	max     int
	floor   int64 // first minute tracked; nothing below it is known
	dropped int64
}

type bucket struct {
	acked   map[uint64]struct{}
	pending map[uint64]struct{} // events read but not acknowledged
}

// NewSet returns a set that holds at most max events.
func NewSet(max int) *Set {
	return &Set{buckets: map[int64]*bucket{}, max: max}
}

// Hash is the set's key for an event key.
func Hash(key string) uint64 { return xxhash.Sum64String(key) }

func minute(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - bucketWidth + 1) / bucketWidth
	}
	return s / bucketWidth
}

// Ref is how the set knows one event: its hash and the minute of its time.
type Ref struct {
	Hash   uint64
	Minute int64
}

// RefOf returns the set's reference of an event.
func RefOf(key string, t time.Time) Ref { return Ref{Hash: Hash(key), Minute: minute(t)} }

// Tracks reports whether events of time t are tracked (at or above Floor).
func (s *Set) Tracks(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return minute(t) >= s.floor
}

// Read records that the event was read and is on its way to the output,
// unless it is known already; it reports whether it was new. Events below
// the floor are not recorded (and reported new).
func (s *Set) Read(r Ref) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Minute < s.floor {
		return true
	}
	b := s.buckets[r.Minute]
	if b == nil {
		b = &bucket{acked: map[uint64]struct{}{}}
		s.buckets[r.Minute] = b
	}
	if _, ok := b.acked[r.Hash]; ok {
		return false
	}
	if _, ok := b.pending[r.Hash]; ok {
		return false
	}
	if b.pending == nil {
		b.pending = map[uint64]struct{}{}
	}
	b.pending[r.Hash] = struct{}{}
	s.n++
	s.shrink()
	return true
}

// Has reports whether the event is known (pending or acked).
func (s *Set) Has(r Ref) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[r.Minute]
	if b == nil {
		return false
	}
	if _, ok := b.acked[r.Hash]; ok {
		return true
	}
	_, ok := b.pending[r.Hash]
	return ok
}

// Acked records that the output acknowledged an event recorded by Read.
func (s *Set) Acked(r Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[r.Minute]
	if b == nil {
		return // pruned or dropped meanwhile
	}
	if _, ok := b.pending[r.Hash]; !ok {
		return
	}
	delete(b.pending, r.Hash)
	b.acked[r.Hash] = struct{}{}
}

// Forget undoes a Read whose event will not be published after all (the
// reader stopped before handing it over): it is pending no more.
func (s *Set) Forget(r Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[r.Minute]
	if b == nil {
		return
	}
	if _, ok := b.pending[r.Hash]; ok {
		delete(b.pending, r.Hash)
		s.n--
	}
}

// Prune forgets the events of the minutes wholly before t: they are older
// than any sweep will read.
func (s *Set) Prune(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := minute(t)
	for k, b := range s.buckets {
		if k < m {
			s.n -= len(b.acked) + len(b.pending)
			delete(s.buckets, k)
		}
	}
	if m > s.floor {
		s.floor = m
	}
}

// shrink drops the oldest minutes while the set holds more than max.
func (s *Set) shrink() {
	if s.max <= 0 || s.n <= s.max {
		return
	}
	keys := s.sortedMinutes()
	for _, k := range keys {
		if s.n <= s.max || len(s.buckets) == 1 {
			break
		}
		b := s.buckets[k]
		c := len(b.acked) + len(b.pending)
		s.n -= c
		s.dropped += int64(c)
		delete(s.buckets, k)
		s.floor = k + 1
	}
}

func (s *Set) sortedMinutes() []int64 {
	keys := make([]int64, 0, len(s.buckets))
	for k := range s.buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// Floor is the earliest event time the set knows about: sweeps must not
// read below it.
func (s *Set) Floor() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Unix(s.floor*bucketWidth, 0).UTC()
}

// Len is the number of events known.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Dropped is the number of events forgotten because the set was full.
func (s *Set) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// snapshot returns the acked events by minute, and the floor.
func (s *Set) snapshot() (map[int64][]uint64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64][]uint64, len(s.buckets))
	for k, b := range s.buckets {
		if len(b.acked) == 0 {
			continue
		}
		hs := make([]uint64, 0, len(b.acked))
		for h := range b.acked {
			hs = append(hs, h)
		}
		out[k] = hs
	}
	return out, s.floor
}

// restore loads acked events (from a state file) into an empty set.
func (s *Set) restore(buckets map[int64][]uint64, floor int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = floor
	for k, hs := range buckets {
		if k < floor {
			continue
		}
		b := &bucket{acked: make(map[uint64]struct{}, len(hs))}
		for _, h := range hs {
			b.acked[h] = struct{}{}
		}
		s.buckets[k] = b
		s.n += len(b.acked)
	}
	s.shrink()
}

// Acks marks events acknowledged in a Set as the output acknowledges
// them: the output acknowledges in publish order, so a queue of the
// published events' references is enough.
type Acks struct {
	set  *Set
	mu   sync.Mutex
	refs []Ref
	head int
}

// NewAcks returns the acknowledgement queue of set.
func NewAcks(set *Set) *Acks { return &Acks{set: set} }

// Published queues the reference of an event about to be published (the
// zero Ref for an event the set does not track).
func (a *Acks) Published(r Ref) {
	a.mu.Lock()
	a.refs = append(a.refs, r)
	a.mu.Unlock()
}

// Acked marks the next n published events acknowledged.
func (a *Acks) Acked(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	end := min(a.head+n, len(a.refs))
	for _, r := range a.refs[a.head:end] {
		if r != (Ref{}) {
			a.set.Acked(r)
		}
	}
	a.head = end
	if a.head > 1024 && a.head*2 > len(a.refs) {
		a.refs = append(a.refs[:0], a.refs[a.head:]...)
		a.head = 0
	}
}
