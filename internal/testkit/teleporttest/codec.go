package teleporttest

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// preEncodedCodec is gRPC's protobuf codec, except that the audit events of
// search pages and export streams are written from the bytes each stored
// event was encoded to once, when it was made (Event.wire). A real Teleport
// runs on another host: the double shares the benchmark's CPUs with the
// beat, and encoding every event on every send would be charged to the
// beat's throughput. The bytes are what proto.Marshal writes (the codec's
// test compares them).
type preEncodedCodec struct {
	store *Store
}

func (preEncodedCodec) Name() string { return "proto" }

func (c preEncodedCodec) Marshal(v any) (mem.BufferSlice, error) {
	var b []byte
	switch m := v.(type) {
	case *auditlogpb.EventsUnstructured:
		n := len(m.GetLastKey()) + 8
		wires := make([][]byte, len(m.GetItems()))
		for i, it := range m.GetItems() {
			w, err := c.store.wireOf(it)
			if err != nil {
				return nil, err
			}
			wires[i] = w
			n += len(w) + 8
		}
		b = make([]byte, 0, n)
		for _, w := range wires {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendBytes(b, w)
		}
		if k := m.GetLastKey(); k != "" {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, k)
		}
	case *auditlogpb.ExportEventUnstructured:
		w, err := c.store.wireOf(m.GetEvent())
		if err != nil {
			return nil, err
		}
		b = make([]byte, 0, len(w)+len(m.GetCursor())+16)
		if m.GetEvent() != nil {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendBytes(b, w)
		}
		if cur := m.GetCursor(); cur != "" {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, cur)
		}
	default:
		return encoding.GetCodecV2("proto").Marshal(v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (preEncodedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}
