package teleporttest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/build/samples"
	"github.com/teleportbeat/teleportbeat/internal/event"
)

// Paging limits of a Teleport Auth Service (lib/defaults): a request
// without a limit gets 500 events, a request above 10,000 is refused, and
// the file and DynamoDB backends cut a page once it holds about 1 MiB.
const (
	DefaultPageLimit = 500
	MaxPageLimit     = 10000
	MaxPageBytes     = 1 << 20
)

// ErrBadParameter marks a request Teleport would refuse as malformed.
var ErrBadParameter = errors.New("bad parameter")

// Event is one stored audit event.
type Event struct {
	seq   uint64
	batch uint64 // the Add call that stored it: one export "file"

	Time  time.Time
	Type  string
	ID    string // the uid, or the SHA-256 of the payload as Teleport computes it
	Index int64
	// Searchable is when the store made the event searchable (set by Add,
	// after any batching or delay).
	Searchable time.Time
	size       int
	pb         *auditlogpb.EventUnstructured
	wire       []byte // pb as proto.Marshal encodes it, made once (see preEncodedCodec)
}

// Proto returns the event as the audit-log API sends it.
func (e *Event) Proto() *auditlogpb.EventUnstructured { return e.pb }

// Decoded returns the event as teleportbeat reads it off the wire.
func (e *Event) Decoded() (*event.Event, error) {
	d, err := event.FromProto(e.pb)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return d, nil
}

// NewEvent builds a stored event from the JSON fields of a Teleport audit
// event (samples.Proto).
func NewEvent(fields map[string]any) (*Event, error) {
	pb, err := samples.Proto(fields)
	if err != nil {
		return nil, err
	}
	wire, err := proto.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", pb.Id, err)
	}
	return &Event{Time: pb.Time.AsTime().UTC(), Type: pb.Type, ID: pb.Id, Index: pb.Index, size: len(wire), pb: pb, wire: wire}, nil
}

// Store holds the cluster's audit log, ordered by time (and, among events
// of the same time, by insertion order).
type Store struct {
	mu      sync.RWMutex
	events  []*Event
	seq     uint64
	batches uint64
	pending int // events of AddAfter not stored yet
	byProto map[*auditlogpb.EventUnstructured]*Event
	// epoch is in every start key: a key of another epoch is refused, as
	// a restored or migrated backend refuses the keys of the one before.
	epoch uint64

	chunkMu    sync.Mutex
	chunkCache map[int64]dayChunks // UTC day (Unix seconds) → its export chunks

	// batching (SetBatching): events wait in batch until it is released.
	batchMu     sync.Mutex
	batchEvery  time.Duration
	batchMax    int
	batch       []*Event
	batchTimer  *time.Timer
	batchesDone int
}

// SetBatching makes the store behave as Teleport's Athena backend: added
// events become searchable in batches, when the oldest waiting event has
// waited maxInterval or maxEvents are waiting (Teleport's
// batchMaxInterval, 1 minute, and batchMaxItems, 20,000). 0 turns it off
// (waiting events are released).
func (s *Store) SetBatching(maxInterval time.Duration, maxEvents int) {
	s.batchMu.Lock()
	s.batchEvery, s.batchMax = maxInterval, maxEvents
	s.batchMu.Unlock()
	if maxInterval == 0 {
		s.releaseBatch()
	}
}

// Batches is how many batches were released.
func (s *Store) Batches() int {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	return s.batchesDone
}

// releaseBatch makes the waiting batch searchable.
func (s *Store) releaseBatch() {
	s.batchMu.Lock()
	evs := s.batch
	s.batch = nil
	if s.batchTimer != nil {
		s.batchTimer.Stop()
		s.batchTimer = nil
	}
	if len(evs) > 0 {
		s.batchesDone++
	}
	s.batchMu.Unlock()
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	s.pending -= len(evs)
	s.mu.Unlock()
	s.add(evs)
}

// Add appends events to the log. Events may arrive out of time order, as
// they do in a real cluster (late-arriving events are inserted at their
// time).
func (s *Store) Add(evs ...*Event) {
	s.batchMu.Lock()
	if s.batchEvery > 0 {
		s.batch = append(s.batch, evs...)
		if s.batchTimer == nil {
			s.batchTimer = time.AfterFunc(s.batchEvery, s.releaseBatch)
		}
		full := s.batchMax > 0 && len(s.batch) >= s.batchMax
		s.batchMu.Unlock()
		s.mu.Lock()
		s.pending += len(evs)
		s.mu.Unlock()
		if full {
			s.releaseBatch()
		}
		return
	}
	s.batchMu.Unlock()
	s.add(evs)
}

// add stores events: searchable from now.
func (s *Store) add(evs []*Event) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sorted := true
	s.batches++
	for _, e := range evs {
		s.seq++
		e.seq = s.seq
		e.batch = s.batches
		e.Searchable = now
		if n := len(s.events); n > 0 && less(e, s.events[n-1]) {
			sorted = false
		}
		s.events = append(s.events, e)
		if s.byProto == nil {
			s.byProto = map[*auditlogpb.EventUnstructured]*Event{}
		}
		s.byProto[e.pb] = e
	}
	if !sorted {
		sort.SliceStable(s.events, func(i, j int) bool { return less(s.events[i], s.events[j]) })
	}
}

// AddAfter stores events once delay has passed, keeping their times: an
// audit backend that makes events searchable late (Athena's batches, an
// eventually consistent index, a node that emits what it buffered while
// the Auth Service was unreachable). It returns at once.
func (s *Store) AddAfter(delay time.Duration, evs ...*Event) {
	s.mu.Lock()
	s.pending += len(evs)
	s.mu.Unlock()
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		s.pending -= len(evs)
		s.mu.Unlock()
		s.Add(evs...)
	})
}

// wireOf returns the encoded bytes of a stored event's message; a message
// the store does not hold (a copy made for one answer) is encoded now.
func (s *Store) wireOf(pb *auditlogpb.EventUnstructured) ([]byte, error) {
	s.mu.RLock()
	e := s.byProto[pb]
	s.mu.RUnlock()
	if e != nil {
		return e.wire, nil
	}
	return proto.Marshal(pb)
}

// Pending is the number of events added that are not searchable yet
// (AddAfter's, and those waiting in a batch).
func (s *Store) Pending() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pending
}

// Len returns the number of stored events.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.events)
}

// All returns a copy of the stored events in log order.
func (s *Store) All() []*Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.events)
}

func less(a, b *Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.seq < b.seq
}

// pageKey is the position after the last event of a page. Teleport's keys
// are opaque to clients (a JSON DynamoDB checkpoint, an Athena keyset, a
// uid for the file log); this one is base64 so that clients cannot rely on
// its shape either.
type pageKey struct {
	T int64  `json:"t"`
	S uint64 `json:"s"`
	E uint64 `json:"e,omitempty"`
}

func encodeKey(e *Event, epoch uint64) string {
	b, _ := json.Marshal(pageKey{T: e.Time.UnixNano(), S: e.seq, E: epoch})
	return base64.RawURLEncoding.EncodeToString(b)
}

// Restore makes the log refuse every start key given out before, as
// Teleport's backends do after a restore or a migration (the file
// backend's key names an event, DynamoDB's a checkpoint of the old
// table): a search with one is answered BadParameter "bad start key".
func (s *Store) Restore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
}

func decodeKey(s string) (pageKey, error) {
	var k pageKey
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("%w: malformed start key %q", ErrBadParameter, s)
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("%w: malformed start key %q", ErrBadParameter, s)
	}
	return k, nil
}

// SearchRequest mirrors GetUnstructuredEventsRequest.
type SearchRequest struct {
	From, To   time.Time
	EventTypes []string
	Limit      int
	Descending bool
	StartKey   string
}

// Search returns one page of events and the key of the next page, "" when
// the search is complete. Like Teleport, it returns a key whenever the
// page was cut (by the limit or the size cap), even if nothing follows.
func (s *Store) Search(req SearchRequest) ([]*Event, string, error) {
	limit := req.Limit
	switch {
	case limit <= 0:
		limit = DefaultPageLimit
	case limit > MaxPageLimit:
		return nil, "", fmt.Errorf("%w: limit %d exceeds %d", ErrBadParameter, limit, MaxPageLimit)
	}
	if req.From.After(req.To) {
		return nil, "", fmt.Errorf("%w: from date is after to date", ErrBadParameter)
	}
	var after *pageKey
	if req.StartKey != "" {
		k, err := decodeKey(req.StartKey)
		if err != nil {
			return nil, "", err
		}
		after = &k
	}
	s.mu.RLock()
	epoch := s.epoch
	s.mu.RUnlock()
	if after != nil && after.E != epoch {
		return nil, "", fmt.Errorf("%w: bad start key %q", ErrBadParameter, req.StartKey)
	}
	var types map[string]struct{}
	if len(req.EventTypes) > 0 {
		types = make(map[string]struct{}, len(req.EventTypes))
		for _, t := range req.EventTypes {
			types[t] = struct{}{}
		}
	}

	s.mu.RLock()
	defer s.mu.RUnlock()

	var (
		out  []*Event
		size int
	)
	accept := func(e *Event) (stop bool) {
		if types != nil {
			if _, ok := types[e.Type]; !ok {
				return false
			}
		}
		if len(out) > 0 && size+e.size > MaxPageBytes {
			return true
		}
		out = append(out, e)
		size += e.size
		return len(out) >= limit
	}
	keyOf := func(e *Event) pageKey { return pageKey{T: e.Time.UnixNano(), S: e.seq} }
	keyLess := func(a, b pageKey) bool { return a.T < b.T || (a.T == b.T && a.S < b.S) }

	cut := false
	if !req.Descending {
		i := sort.Search(len(s.events), func(i int) bool { return !s.events[i].Time.Before(req.From) })
		if after != nil {
			j := sort.Search(len(s.events), func(i int) bool { return keyLess(*after, keyOf(s.events[i])) })
			i = max(i, j)
		}
		for ; i < len(s.events); i++ {
			e := s.events[i]
			if e.Time.After(req.To) {
				break
			}
			if accept(e) {
				cut = true
				break
			}
		}
	} else {
		i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Time.After(req.To) }) - 1
		if after != nil {
			j := sort.Search(len(s.events), func(i int) bool { return !keyLess(keyOf(s.events[i]), *after) }) - 1
			i = min(i, j)
		}
		for ; i >= 0; i-- {
			e := s.events[i]
			if e.Time.Before(req.From) {
				break
			}
			if accept(e) {
				cut = true
				break
			}
		}
	}
	if cut && len(out) > 0 {
		return out, encodeKey(out[len(out)-1], epoch), nil
	}
	return out, "", nil
}
