// Package event is a Teleport audit or session event as teleportbeat reads
// it: decoded straight from Teleport's wire format (an EventUnstructured
// message) into the map the ECS mapper publishes, without building
// protobuf Struct and Value objects first.
package event

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/elastic/elastic-agent-libs/mapstr"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// Event is one Teleport event.
type Event struct {
	// Type is the event type ("user.login").
	Type string
	// ID is the id the API gives the event. It is not stable for events
	// without a uid (see Key).
	ID string
	// Time is the event's time; zero when Teleport sent none.
	Time time.Time
	// Index is the event's index in its session (session recordings).
	Index int64
	// Fields is the event's payload, once Load has decoded it (nil
	// before). Top-level keys are as Teleport sent them ("addr.remote"
	// stays one key; the mapper decides how to expand them), and so are
	// the keys of nested objects; integral numbers are int64, other
	// numbers float64; nulls are left out.
	Fields mapstr.M
	loaded bool

	key     string
	payload string // the payload (a protobuf Struct) as it came on the wire
	// sharedUID is the uid, when another event with different content has
	// it too and this one is known by key (uid#content hash) instead.
	sharedUID string
}

// ShareUID marks the event as a second, different event with the uid of
// another: it is known, and stored, by key instead.
func (e *Event) ShareUID(key string) {
	if e.sharedUID == "" {
		e.sharedUID = e.key
	}
	e.key = key
}

// SharedUID is the uid the event shares with another, different event ("":
// none known).
func (e *Event) SharedUID() string { return e.sharedUID }

// Key is what tells the event apart and the id Elasticsearch stores it
// under: its uid, or for the rare event without one a hash of its content
// (see IDOf).
func (e *Event) Key() string { return e.key }

// String is the payload's top-level string field key ("" if it is not a
// string).
func (e *Event) String(key string) string {
	_ = e.Load()
	s, _ := e.Fields[key].(string)
	return s
}

// Bool is the payload's top-level boolean field key; ok is false when the
// event has no such boolean.
func (e *Event) Bool(key string) (v, ok bool) {
	_ = e.Load()
	v, ok = e.Fields[key].(bool)
	return v, ok
}

// ContentHash is the SHA-256 of the event's payload, the same for every
// read of the event (see ContentHash).
func (e *Event) ContentHash() string { return PayloadHash([]byte(e.payload)) }

// Same reports whether a and b are reads of the same event: the same
// payload (the API's id is ignored, see Key).
func Same(a, b *Event) bool {
	return a == b || a.payload == b.payload || SamePayload([]byte(a.payload), []byte(b.payload))
}

// FromProto converts an event decoded by teleport/api's generated code, as
// session recordings and tests have them: it marshals the message and
// decodes it again, so that every event goes through one decoder.
func FromProto(pb *auditlogpb.EventUnstructured) (*Event, error) {
	b, err := proto.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode the event: %w", err)
	}
	return Decode(b)
}

// Exported is one event of an audit export chunk and the cursor to resume
// the chunk after it.
type Exported struct {
	Event  *Event
	Cursor string
}
