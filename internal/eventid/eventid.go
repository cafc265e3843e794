// Package eventid identifies Teleport audit events: the id Elasticsearch
// stores an event under (so that a replay is dropped as a duplicate) and
// the key the reader tells events apart by.
package eventid

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// Of returns the event's id: its uid, or for the rare event without one a
// hash of its content. (The API's own id for such events is a hash of the
// payload in the pinned Teleport, but a fresh random UUID on every read in
// newer Auth Services, so it cannot serve to recognise a replay.)
func Of(ev *auditlogpb.EventUnstructured) string {
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

// SameEvent reports whether two reads are the same event: the same
// payload (the API's id is ignored, see Of).
func SameEvent(a, b *auditlogpb.EventUnstructured) bool {
	return a == b || proto.Equal(a.GetUnstructured(), b.GetUnstructured())
}
