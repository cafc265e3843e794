// Package shipped is what the audit reader remembers of the events it
// shipped, to catch events that become visible in Teleport after it has
// passed their time without sending the rest again: the set of events
// shipped recently (so that a sweep of the recent past sends only what is
// new; kept across restarts as the attachment of the position's backup
// file, state.go) and the recheck's record of every event shipped, by day
// (Record).
package shipped

import (
	"encoding/binary"
	"sort"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/teleportbeat/teleportbeat/internal/event"
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
// Memory is bounded by max events (about 24 bytes each). When it is full,
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

// bucket maps the hash of each event key (uid) to its identity (a hash of
// its type, time and index): a second, different event with a uid already
// known is told apart.
type bucket struct {
	acked   map[uint64]uint64
	pending map[uint64]uint64 // events read but not acknowledged
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

// Ref is how the set knows one event: the hash of its key, the minute of
// its time, and its identity (Identity).
type Ref struct {
	Hash   uint64
	Minute int64
	Ident  uint64
}

// RefOf returns the set's reference of an event.
func RefOf(e *event.Event) Ref {
	return Ref{Hash: Hash(e.Key()), Minute: minute(e.Time), Ident: Identity(e)}
}

// RefOfKey is the reference of an event known by its key, time and
// identity only.
func RefOfKey(key string, t time.Time, ident uint64) Ref {
	return Ref{Hash: Hash(key), Minute: minute(t), Ident: ident}
}

// Identity is a hash of what tells two events with one uid apart cheaply:
// their type, time and index. (Teleport gives every event its own uid;
// events that share one, as some of Teleport's own fixtures do, differ in
// these.)
func Identity(e *event.Event) uint64 {
	var b [8]byte
	d := xxhash.New()
	_, _ = d.WriteString(e.Type)
	binary.LittleEndian.PutUint64(b[:], uint64(e.Time.UnixNano()))
	_, _ = d.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], uint64(e.Index))
	_, _ = d.Write(b[:])
	return d.Sum64()
}

// Seen is what the set knew of an event.
type Seen int

const (
	// New is an event the set did not know.
	New Seen = iota
	// Known is an event read (or acknowledged) before.
	Known
	// OtherContent is an event whose uid the set knows for another event.
	OtherContent
)

// Tracks reports whether events of time t are tracked (at or above Floor).
func (s *Set) Tracks(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return minute(t) >= s.floor
}

// Read records that the event was read and is on its way to the output,
// unless the set knows it already or knows its uid for another event
// (then nothing is recorded: the caller gives the event a key of its own
// and reads it again). Events below the floor are not recorded (and
// reported New).
func (s *Set) Read(r Ref) Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Minute < s.floor {
		return New
	}
	b := s.buckets[r.Minute]
	if b == nil {
		b = &bucket{acked: map[uint64]uint64{}}
		s.buckets[r.Minute] = b
	}
	if seen, ok := b.lookup(r); ok {
		return seen
	}
	// The uid of an event of another minute: a different event (the same
	// event is always in its own minute, its identity holds its time).
	// Events with one uid seconds apart fall in two minutes half the time.
	for m, other := range s.buckets {
		if m == r.Minute {
			continue
		}
		if _, ok := other.acked[r.Hash]; ok {
			return OtherContent
		}
		if _, ok := other.pending[r.Hash]; ok {
			return OtherContent
		}
	}
	if b.pending == nil {
		b.pending = map[uint64]uint64{}
	}
	b.pending[r.Hash] = r.Ident
	s.n++
	s.shrink()
	return New
}

func (b *bucket) lookup(r Ref) (Seen, bool) {
	id, ok := b.acked[r.Hash]
	if !ok {
		id, ok = b.pending[r.Hash]
	}
	switch {
	case !ok:
		return New, false
	case id != r.Ident:
		return OtherContent, true
	}
	return Known, true
}

// Has reports whether the event is known (pending or acked).
func (s *Set) Has(r Ref) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[r.Minute]
	if b == nil {
		return false
	}
	seen, _ := b.lookup(r)
	return seen == Known
}

// Acked records that the output acknowledged an event recorded by Read.
func (s *Set) Acked(r Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[r.Minute]
	if b == nil {
		return // pruned or dropped meanwhile
	}
	id, ok := b.pending[r.Hash]
	if !ok || id != r.Ident {
		return
	}
	delete(b.pending, r.Hash)
	b.acked[r.Hash] = id
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
	if id, ok := b.pending[r.Hash]; ok && id == r.Ident {
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

// snapshot returns the acked events by minute (key hash, identity pairs),
// and the floor.
func (s *Set) snapshot() (map[int64][]uint64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64][]uint64, len(s.buckets))
	for k, b := range s.buckets {
		if len(b.acked) == 0 {
			continue
		}
		hs := make([]uint64, 0, 2*len(b.acked))
		for h, id := range b.acked {
			hs = append(hs, h, id)
		}
		out[k] = hs
	}
	return out, s.floor
}

// restore loads acked events (decoded by UnmarshalBinary) into an empty set.
func (s *Set) restore(buckets map[int64][]uint64, floor int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = floor
	for k, hs := range buckets {
		if k < floor {
			continue
		}
		b := &bucket{acked: make(map[uint64]uint64, len(hs)/2)}
		for i := 0; i+1 < len(hs); i += 2 {
			b.acked[hs[i]] = hs[i+1]
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
	set    *Set
	record *Record // nil without the recheck
	onErr  func(error)
	mu     sync.Mutex
	refs   []Ref
	head   int
}

// NewAcks returns the acknowledgement queue of set; shipped (nil: none)
// records every acknowledged event for the recheck, and onErr hears of the
// first failure to record.
func NewAcks(set *Set, record *Record, onErr func(error)) *Acks {
	return &Acks{set: set, record: record, onErr: onErr}
}

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
	if a.record != nil {
		if err := a.record.Add(a.refs[a.head:end]); err != nil && a.onErr != nil {
			a.onErr(err)
		}
	}
	a.head = end
	if a.head > 1024 && a.head*2 > len(a.refs) {
		a.refs = append(a.refs[:0], a.refs[a.head:]...)
		a.head = 0
	}
}
