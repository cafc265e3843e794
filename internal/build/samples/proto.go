package samples

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/event"
)

// Proto is the event with the JSON fields of a Teleport audit event
// ("event", "uid", "time", "ei", ... as in Teleport's JSON log) as
// Teleport's API serves it. The
// API's id is the uid, or the SHA-256 of the JSON payload when the event
// has none, which is what Teleport's ToUnstructured does.
func Proto(fields map[string]any) (*auditlogpb.EventUnstructured, error) {
	payload, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	st := &structpb.Struct{}
	if err := st.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("convert event to a protobuf Struct: %w", err)
	}
	typ, _ := fields["event"].(string)
	id, _ := fields["uid"].(string)
	if id == "" {
		sum := sha256.Sum256(payload)
		id = hex.EncodeToString(sum[:])
	}
	var t time.Time
	if ts, ok := fields["time"].(string); ok {
		t, err = time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("event %s: bad time %q: %w", id, ts, err)
		}
	}
	var index int64
	switch v := fields["ei"].(type) {
	case float64:
		index = int64(v)
	case int:
		index = int64(v)
	case int64:
		index = v
	case json.Number:
		index, _ = v.Int64()
	}
	pb := &auditlogpb.EventUnstructured{
		Type:         typ,
		Id:           id,
		Time:         timestamppb.New(t),
		Index:        index,
		Unstructured: st,
	}
	return pb, nil
}

// Decode is the event with these fields as teleportbeat reads it.
func Decode(fields map[string]any) (*event.Event, error) {
	pb, err := Proto(fields)
	if err != nil {
		return nil, err
	}
	return event.FromProto(pb)
}
