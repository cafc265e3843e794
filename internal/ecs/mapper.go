// Package ecs maps Teleport audit events to Elastic Common Schema
// documents: the raw event under teleport.<dataset>, and the ECS fields
// derived from it.
package ecs

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/elastic-agent-libs/mapstr"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/eventid"
)

// Datasets of the documents teleportbeat writes.
const (
	DatasetAudit   = "teleport.audit"
	DatasetSession = "teleport.session"
	Module         = "teleport"
)

// Mapper turns Teleport events into beat events for one dataset.
type Mapper struct {
	dataset string
	rawKey  string // "audit" or "session": the raw event goes under teleport.<rawKey>
}

// NewAuditMapper returns the mapper for audit log events.
func NewAuditMapper() *Mapper { return &Mapper{dataset: DatasetAudit, rawKey: "audit"} }

// NewSessionMapper returns the mapper for session recording events.
func NewSessionMapper() *Mapper { return &Mapper{dataset: DatasetSession, rawKey: "session"} }

// EventNormalization is the setting for beat.ProcessingConfig of clients
// that publish the mapper's events: off. libbeat's normalization makes a
// converted copy of every event (about a tenth of teleportbeat's CPU); the
// mapper already builds events of the types it would produce: mapstr.M,
// strings, int64, float64, bool, []any, []string and common.Time.
func EventNormalization() *bool {
	off := false
	return &off
}

// rootToMap converts the event's top-level Struct like structToMap, first
// moving a value whose form (object or not) is not the one mapped for its
// key to the key's alternate (see rawConflicts), so that Teleport's dotted
// keys ("addr.local") never meet a plain value of the same name ("addr").
func rootToMap(s *structpb.Struct) mapstr.M {
	m := make(mapstr.M, len(s.GetFields()))
	for k, v := range s.GetFields() {
		val := valueToGo(v)
		if val == nil {
			continue
		}
		if c, ok := rawConflicts[k]; ok {
			if _, isObject := val.(mapstr.M); isObject != c.wantObject {
				k = c.alt
			}
		}
		putExpanded(m, k, val)
	}
	return m
}

// Map converts one event. now is used as @timestamp for the rare event
// without a time (it is then tagged so that it can be found).
func (m *Mapper) Map(ev *auditlogpb.EventUnstructured, now time.Time) beat.Event {
	raw := rootToMap(ev.GetUnstructured())
	fields := mapstr.M{
		"teleport": mapstr.M{m.rawKey: raw},
	}

	ts := now
	if t := ev.GetTime(); t != nil && (t.GetSeconds() != 0 || t.GetNanos() != 0) {
		ts = t.AsTime()
	} else if s, ok := raw["time"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			ts = t
		} else {
			fields["tags"] = []string{"teleport_missing_time"}
		}
	} else {
		fields["tags"] = []string{"teleport_missing_time"}
	}

	typ := ev.GetType()
	if typ == "" {
		typ, _ = raw["event"].(string)
	}
	event := mapstr.M{
		"kind":    "event",
		"module":  Module,
		"dataset": m.dataset,
	}
	if typ != "" {
		event["action"] = typ
	}
	code, _ := raw["code"].(string)
	if code != "" {
		event["code"] = code
	}
	id := eventid.Of(ev)
	event["id"] = id
	if outcome := outcomeOf(raw, code); outcome != "" {
		event["outcome"] = outcome
	}
	fields["event"] = event

	normalize(raw)
	et, known := LookupEventType(typ)
	if !known {
		if g, ok := guessEventType(typ); ok {
			et = &g
		}
	}
	enrich(fields, event, raw, typ, et)

	// Elasticsearch drops a replayed event as a duplicate of the document
	// with the same _id.
	return beat.Event{Timestamp: ts, Fields: fields, Meta: mapstr.M{"_id": id}}
}

// outcomeOf derives event.outcome: Teleport's "success" flag where the
// event has one, otherwise the severity letter that ends every Teleport
// event code (I: info, W: warning/failure, E: error).
func outcomeOf(raw mapstr.M, code string) string {
	if s, ok := raw["success"].(bool); ok {
		if s {
			return "success"
		}
		return "failure"
	}
	if code == "" {
		return ""
	}
	switch code[len(code)-1] {
	case 'I':
		return "success"
	case 'W', 'E':
		return "failure"
	}
	return ""
}

// addrFields reads an "ip:port" address (Teleport's addr.remote and
// addr.local) into ECS source/destination fields.
func addrFields(raw mapstr.M, obj, key string) mapstr.M {
	var s string
	if m, ok := raw[obj].(mapstr.M); ok {
		s, _ = m[key].(string)
	}
	if s == "" {
		return nil
	}
	return addrMap(s)
}

// SplitAddr parses "ip:port", "[ipv6]:port", a bare IP, and the
// malformed IPv6 forms Teleport sometimes logs ("2a02:cf40:::3022": an
// unbracketed IPv6 followed by the port). ok is false when no IP can be
// read.
func SplitAddr(s string) (netip.Addr, int, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), int(ap.Port()), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), 0, true
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return netip.Addr{}, 0, false
	}
	a, err := netip.ParseAddr(strings.Trim(s[:i], "[]"))
	if err != nil {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return a.Unmap(), 0, true
	}
	return a.Unmap(), port, true
}

// structToMap converts a protobuf Struct to a mapstr.M without going
// through JSON. Keys with dots ("addr.remote") are expanded into nested
// objects, which is how Elasticsearch reads them anyway; integral numbers
// become int64 (protobuf carries every number as a double).
func structToMap(s *structpb.Struct) mapstr.M {
	if s == nil {
		return mapstr.M{}
	}
	m := make(mapstr.M, len(s.GetFields()))
	for k, v := range s.GetFields() {
		val := valueToGo(v)
		if val == nil {
			continue
		}
		putExpanded(m, k, val)
	}
	return m
}

func putExpanded(m mapstr.M, key string, val any) {
	dot := strings.IndexByte(key, '.')
	if dot <= 0 || dot == len(key)-1 {
		if existing, ok := m[key].(mapstr.M); ok {
			if vm, ok := val.(mapstr.M); ok {
				for k, v := range vm {
					putExpanded(existing, k, v)
				}
				return
			}
		}
		m[key] = val
		return
	}
	head := key[:dot]
	switch child := m[head].(type) {
	case mapstr.M:
		putExpanded(child, key[dot+1:], val)
	case nil:
		c := mapstr.M{}
		m[head] = c
		putExpanded(c, key[dot+1:], val)
	default:
		// "a" is a value and "a.b" a key: keep the dotted key as it is.
		m[key] = val
	}
}

func valueToGo(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		return structToMap(k.StructValue)
	case *structpb.Value_ListValue:
		vals := k.ListValue.GetValues()
		out := make([]any, 0, len(vals))
		for _, e := range vals {
			if g := valueToGo(e); g != nil {
				out = append(out, g)
			}
		}
		return out
	default:
		return nil
	}
}
