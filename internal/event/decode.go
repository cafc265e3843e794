package event

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

// Field numbers of the messages decoded here (teleport/auditlog/v1 and
// google/protobuf struct.proto and timestamp.proto).
const (
	eventsItems   = 1 // EventsUnstructured.items
	eventsLastKey = 2 // EventsUnstructured.last_key

	exportEvent  = 1 // ExportEventUnstructured.event
	exportCursor = 2 // ExportEventUnstructured.cursor

	eventType         = 1 // EventUnstructured.type
	eventID           = 2 // EventUnstructured.id
	eventTime         = 3 // EventUnstructured.time
	eventIndex        = 4 // EventUnstructured.index
	eventUnstructured = 5 // EventUnstructured.unstructured

	timestampSeconds = 1
	timestampNanos   = 2

	structFields = 1 // Struct.fields, a map<string, Value>
	entryKey     = 1
	entryValue   = 2

	valueNull   = 1
	valueNumber = 2
	valueString = 3
	valueBool   = 4
	valueStruct = 5
	valueList   = 6

	listValues = 1
)

// errTruncated is a message that ends in the middle of a field.
var errTruncated = errors.New("truncated protobuf message")

// maxDepth bounds the nesting of objects and lists in a payload, so that
// no input can exhaust the stack. protobuf's own decoder refuses messages
// nested more than 10,000 deep, which is at most 5,000 objects.
const maxDepth = 10000

var errTooDeep = fmt.Errorf("objects and lists nested more than %d deep", maxDepth)

// Why not proto.Unmarshal into the generated types: a protobuf Struct is a
// map of Value messages, each holding a oneof wrapper; decoding one event
// of about 600 bytes builds some 130 objects that are then converted into
// the map libbeat publishes, and dropped. Decoding the wire format straight
// into that map, with every string a slice of one copy of the event's
// bytes, does the same work with a fraction of the allocations (see
// BenchmarkDecodePage and BenchmarkDecodePageWire, next to the fuzz test).
//
// Decoding follows protobuf's rules where they matter: unknown fields are
// skipped, the last of repeated scalar fields wins, a field with an
// unexpected wire type is skipped as unknown. It is lenient where protobuf
// is strict: strings are not checked for valid UTF-8 (libbeat's JSON
// encoder replaces invalid bytes), so an event is never refused for them.

// Decode decodes one EventUnstructured message.
func Decode(b []byte) (*Event, error) {
	// One string holds every string of the event: the keys and values of
	// the payload are slices of it, not copies.
	return decodeEvent(b, string(b))
}

// DecodePage decodes an EventsUnstructured message (one page of
// SearchUnstructuredEvents): its events and the key of the next page.
func DecodePage(b []byte) ([]*Event, string, error) {
	var (
		events  []*Event
		lastKey string
	)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == eventsItems && typ == protowire.BytesType:
			e, err := Decode(v)
			if err != nil {
				return fmt.Errorf("event %d of the page: %w", len(events)+1, err)
			}
			events = append(events, e)
		case num == eventsLastKey && typ == protowire.BytesType:
			lastKey = string(v)
		}
		return nil
	})
	return events, lastKey, err
}

// DecodeExported decodes an ExportEventUnstructured message (one event of
// an export chunk stream): the event and the cursor to resume after it.
func DecodeExported(b []byte) (*Event, string, error) {
	var (
		evSeg segments
		cur   string
	)
	err := eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, _ uint64) error {
		switch {
		case num == exportEvent && typ == protowire.BytesType:
			evSeg.add(at, len(v))
		case num == exportCursor && typ == protowire.BytesType:
			cur = string(v)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	ev, err := Decode(evSeg.bytes(b))
	return ev, cur, err
}

func decodeEvent(b []byte, s string) (*Event, error) {
	e := &Event{}
	// A message field that occurs more than once is merged, which for its
	// wire form is concatenation (protobuf's rule; encoders never do it).
	var timeSeg, payloadSeg segments
	err := eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, x uint64) error {
		switch {
		case num == eventType && typ == protowire.BytesType:
			e.Type = s[at : at+len(v)]
		case num == eventID && typ == protowire.BytesType:
			e.ID = s[at : at+len(v)]
		case num == eventTime && typ == protowire.BytesType:
			timeSeg.add(at, len(v))
		case num == eventIndex && typ == protowire.VarintType:
			e.Index = int64(x)
		case num == eventUnstructured && typ == protowire.BytesType:
			payloadSeg.add(at, len(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tb, _ := timeSeg.join(b, s); len(tb) > 0 {
		if e.Time, err = decodeTimestamp(tb); err != nil {
			return nil, fmt.Errorf("time: %w", err)
		}
	}
	pb, ps := payloadSeg.join(b, s)
	e.payload = ps
	// The payload is checked now, so that a malformed one fails the read
	// as it always did, but turned into maps only when the event is
	// published (Load): what is read ahead of the publisher holds the
	// event's bytes, not some forty objects per event, which is most of
	// teleportbeat's memory during a backfill and of the collector's work.
	if e.key, err = checkPayload(pb, ps); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if e.key == "" {
		e.key = PayloadHash(pb)
	}
	return e, nil
}

// Load decodes the payload into Fields, once. Decode checked the payload,
// so that this cannot fail for an event it returned.
func (e *Event) Load() error {
	if e.loaded {
		return nil
	}
	e.loaded = true
	m, err := decodeStruct(bytesOf(e.payload), e.payload, 0, false)
	if err != nil {
		e.Fields = mapstr.M{}
		return fmt.Errorf("event %s: payload: %w", e.key, err)
	}
	e.Fields = m
	return nil
}

// Unload drops the decoded payload (Fields); a later Load decodes it
// again. The pump unloads an event once it is published: what stays alive
// until the batch is gone is the payload's bytes, not its maps.
func (e *Event) Unload() {
	e.Fields, e.loaded = nil, false
}

// bytesOf is s's bytes, for reading only: the payload is kept as a string
// (its strings are slices of it) and decoded later from the same memory.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// checkPayload checks the payload as decodeStruct would decode it (the same
// errors), building nothing, and returns its top-level "uid" string, as the
// decoded map would hold it (the last non-null entry of that key wins): one
// pass over the payload when it is read.
func checkPayload(b []byte, s string) (uid string, err error) {
	err = eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, _ uint64) error {
		if num != structFields || typ != protowire.BytesType {
			return nil
		}
		key, val, vs, hasVal, err := splitEntry(v, s[at:at+len(v)])
		if err == nil && hasVal {
			if key == "uid" {
				var x any
				if x, err = decodeValue(val, vs, 0, false); x != nil {
					uid, _ = x.(string) // a null leaves the map as it was
				}
			} else {
				_, err = decodeValue(val, vs, 0, true)
			}
		}
		if err != nil {
			return nested(fmt.Sprintf("field %q", key), err)
		}
		return nil
	})
	return uid, err
}

// segments are the places of the occurrences of one field in a message.
type segments struct {
	first, end int // the first occurrence: b[first:end]
	more       [][2]int
	n          int
}

func (g *segments) add(at, n int) {
	if g.n == 0 {
		g.first, g.end = at, at+n
	} else {
		g.more = append(g.more, [2]int{at, at + n})
	}
	g.n++
}

// bytes is the field's bytes: a slice of b when it occurs once, the
// concatenation of its occurrences otherwise.
func (g *segments) bytes(b []byte) []byte {
	if g.n <= 1 {
		return b[g.first:g.end]
	}
	out := append([]byte(nil), b[g.first:g.end]...)
	for _, m := range g.more {
		out = append(out, b[m[0]:m[1]]...)
	}
	return out
}

// join is bytes, and the same as a string (a slice of s, which holds
// what b does, when the field occurs once).
func (g *segments) join(b []byte, s string) ([]byte, string) {
	if g.n <= 1 {
		return b[g.first:g.end], s[g.first:g.end]
	}
	out := g.bytes(b)
	return out, string(out)
}

// decodeTimestamp decodes a google.protobuf.Timestamp; both parts zero is
// no time (what teleport/api's AsTime would make the Unix epoch).
func decodeTimestamp(b []byte) (time.Time, error) {
	var sec, nanos int64
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		switch {
		case num == timestampSeconds && typ == protowire.VarintType:
			sec = int64(x)
		case num == timestampNanos && typ == protowire.VarintType:
			nanos = int64(int32(x))
		}
		return nil
	})
	if err != nil || (sec == 0 && nanos == 0) {
		return time.Time{}, err
	}
	return time.Unix(sec, nanos).UTC(), nil
}

// decodeStruct decodes a google.protobuf.Struct whose bytes b are also
// given as the string s (the strings of the result are slices of s). Keys
// are kept as Teleport wrote them, dotted ones too: whether "a.b" is a
// path or a name (a Kubernetes label "app.kubernetes.io/name" beside
// "app") is the mapper's to decide, by the field's mapping.
//
// With dry, nothing is built: the payload is only checked, with the errors
// decoding it would give (and the result is nil).
func decodeStruct(b []byte, s string, depth int, dry bool) (mapstr.M, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	var m mapstr.M
	if !dry {
		n := 0
		if err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, _ uint64) error {
			if num == structFields && typ == protowire.BytesType {
				n++
			}
			return nil
		}); err != nil {
			return nil, err
		}
		m = make(mapstr.M, n)
	}
	err := eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, _ uint64) error {
		if num != structFields || typ != protowire.BytesType {
			return nil
		}
		key, val, err := decodeEntry(v, s[at:at+len(v)], depth, dry)
		if err != nil {
			return nested(fmt.Sprintf("field %q", key), err)
		}
		if val == nil || dry {
			return nil
		}
		m[key] = val
		return nil
	})
	return m, err
}

// splitEntry finds the key and the value of one entry of a Struct's map
// (hasVal false for an entry without a value).
func splitEntry(b []byte, s string) (key string, val []byte, vs string, hasVal bool, err error) {
	var valAt, valEnd int
	err = eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, _ uint64) error {
		switch {
		case num == entryKey && typ == protowire.BytesType:
			key = s[at : at+len(v)]
		case num == entryValue && typ == protowire.BytesType:
			valAt, valEnd, hasVal = at, at+len(v), true
		}
		return nil
	})
	return key, b[valAt:valEnd], s[valAt:valEnd], hasVal, err
}

// decodeEntry decodes one entry of a Struct's map: its key and its value
// converted (nil for a null or an empty Value).
func decodeEntry(b []byte, s string, depth int, dry bool) (string, any, error) {
	key, val, vs, hasVal, err := splitEntry(b, s)
	if err != nil || !hasVal {
		return key, nil, err
	}
	v, err := decodeValue(val, vs, depth, dry)
	return key, v, err
}

// decodeValue decodes a google.protobuf.Value: a string, an int64 for
// integral numbers within float64's exact range, a float64, a bool, a
// mapstr.M, an []any, or nil.
func decodeValue(b []byte, s string, depth int, dry bool) (any, error) {
	var (
		kind         protowire.Number
		x            uint64
		subAt, subTo int
	)
	// The last member of the oneof on the wire wins, as in protobuf.
	err := eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, u uint64) error {
		want := protowire.BytesType
		switch num {
		case valueNull, valueBool:
			want = protowire.VarintType
		case valueNumber:
			want = protowire.Fixed64Type
		case valueString, valueStruct, valueList:
		default:
			return nil
		}
		if typ != want {
			return nil
		}
		kind, x, subAt, subTo = num, u, at, at+len(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if dry {
		switch kind {
		case valueStruct:
			_, err = decodeStruct(b[subAt:subTo], s[subAt:subTo], depth+1, true)
		case valueList:
			_, err = decodeList(b[subAt:subTo], s[subAt:subTo], depth+1, true)
		}
		return nil, err
	}
	switch kind {
	case valueNumber:
		f := math.Float64frombits(x)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case valueString:
		return s[subAt:subTo], nil
	case valueBool:
		return x != 0, nil
	case valueStruct:
		return decodeStruct(b[subAt:subTo], s[subAt:subTo], depth+1, false)
	case valueList:
		return decodeList(b[subAt:subTo], s[subAt:subTo], depth+1, false)
	}
	return nil, nil
}

// decodeList decodes a google.protobuf.ListValue, leaving out nulls.
func decodeList(b []byte, s string, depth int, dry bool) ([]any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	out := []any{}
	n := 0
	err := eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, at int, _ uint64) error {
		if num != listValues || typ != protowire.BytesType {
			return nil
		}
		n++
		val, err := decodeValue(v, s[at:at+len(v)], depth, dry)
		if err != nil {
			return nested(fmt.Sprintf("list element %d", n), err)
		}
		if val != nil {
			out = append(out, val)
		}
		return nil
	})
	if dry {
		return nil, err
	}
	return out, err
}

// eachField calls fn with every field of the message b: its number, wire
// type, and its bytes (length-delimited fields) or value (varint and
// fixed fields).
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	return eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, _ int, x uint64) error {
		return fn(num, typ, v, x)
	})
}

// eachFieldAt is eachField that also gives the offset of v in b.
func eachFieldAt(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, at int, x uint64) error) error {
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return wireError(protowire.ParseError(n))
		}
		pos += n
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b[pos:])
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b[pos:])
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b[pos:])
			x = uint64(x32)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b[pos:])
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[pos:])
		}
		if n < 0 {
			return wireError(protowire.ParseError(n))
		}
		at := pos + n - len(v)
		pos += n
		if err := fn(num, typ, v, at, x); err != nil {
			return err
		}
	}
	return nil
}

// nested says where in the payload err happened, once: the innermost
// place (wrapping at every level of a deeply nested payload would build
// an error as long as the payload is deep).
func nested(where string, err error) error {
	var p *placedError
	if errors.As(err, &p) || errors.Is(err, errTooDeep) {
		return err
	}
	return &placedError{where: where, err: err}
}

type placedError struct {
	where string
	err   error
}

func (e *placedError) Error() string { return e.where + ": " + e.err.Error() }
func (e *placedError) Unwrap() error { return e.err }

func wireError(err error) error {
	if err == nil || strings.Contains(err.Error(), "unexpected EOF") {
		return errTruncated
	}
	return fmt.Errorf("malformed protobuf message: %w", err)
}
