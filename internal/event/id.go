// An event's id: the id Elasticsearch stores it under (so that a replay
// is dropped as a duplicate) and the key the reader tells events apart by.
package event

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// IDOf returns the event's id: its uid, or for the rare event without one a
// hash of its content. (The API's own id for such events is a hash of the
// payload in the pinned Teleport, but a fresh random UUID on every read in
// newer Auth Services, so it cannot serve to recognise a replay.)
func IDOf(ev *auditlogpb.EventUnstructured) string {
	if uid := ev.GetUnstructured().GetFields()["uid"].GetStringValue(); uid != "" {
		return uid
	}
	return ContentHash(ev)
}

// ContentHash is the SHA-256 of the event's payload, deterministic across
// reads.
func ContentHash(ev *auditlogpb.EventUnstructured) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ev.GetUnstructured())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SameProto reports whether two reads are the same event: the same
// payload (the API's id is ignored, see IDOf).
func SameProto(a, b *auditlogpb.EventUnstructured) bool {
	return a == b || proto.Equal(a.GetUnstructured(), b.GetUnstructured())
}

// PayloadHash is ContentHash of an event whose payload (a protobuf Struct)
// is given in its wire form, which differs between reads (map order): it
// is decoded and hashed in its deterministic form. A payload that protobuf
// refuses to decode (teleportbeat's own decoder is more lenient) is hashed
// as it is.
func PayloadHash(payload []byte) string {
	var s structpb.Struct
	b := payload
	if err := proto.Unmarshal(payload, &s); err == nil {
		if d, err := (proto.MarshalOptions{Deterministic: true}).Marshal(&s); err == nil {
			b = d
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SamePayload is SameProto for payloads in their wire form.
func SamePayload(a, b []byte) bool {
	var sa, sb structpb.Struct
	if proto.Unmarshal(a, &sa) != nil || proto.Unmarshal(b, &sb) != nil {
		return string(a) == string(b)
	}
	return proto.Equal(&sa, &sb)
}
