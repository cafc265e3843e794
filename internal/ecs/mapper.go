// Package ecs maps Teleport audit events to Elastic Common Schema
// documents: the raw event under teleport.<dataset>, and the ECS fields
// derived from it.
package ecs

import (
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/elastic-agent-libs/mapstr"

	"github.com/teleportbeat/teleportbeat/internal/event"
)

// ECSVersion is the ECS release teleportbeat's documents follow, stated in
// each document's ecs.version (libbeat stamps 8.0.0, its own, only where a
// document has none) and the one the Fleet package resolves its ECS fields
// from.
const ECSVersion = "8.17.0"

// Datasets of the documents teleportbeat writes.
const (
	DatasetAudit   = "teleportbeat.audit"
	DatasetSession = "teleportbeat.session"
	Module         = "teleport"
)

// Mapper turns Teleport events into beat events for one dataset. It is
// safe for concurrent use.
type Mapper struct {
	dataset string
	rawKey  string // "audit" or "session": the raw event goes under teleport.<rawKey>
	// cluster is the Teleport cluster the events are read from, for
	// teleport.cluster where an event does not say (WithCluster).
	cluster string

	misfits       atomic.Int64
	moved         atomic.Int64
	uidCollisions atomic.Int64
}

// MapperStats are a mapper's counters.
type MapperStats struct {
	// Misfits counts events with a value moved to teleport.misfits.
	Misfits int64
	// Moved counts events with a key moved to teleport.unmapped because
	// Elasticsearch cannot take it where it was, or an object too deep
	// for a flattened field kept as its JSON text.
	Moved int64
	// UIDCollisions counts events stored under their uid and a hash of
	// their content, because another event with different content has
	// the same uid.
	UIDCollisions int64
}

// Stats returns the mapper's counters.
func (m *Mapper) Stats() MapperStats {
	return MapperStats{Misfits: m.misfits.Load(), Moved: m.moved.Load(), UIDCollisions: m.uidCollisions.Load()}
}

// NewAuditMapper returns the mapper for audit log events.
func NewAuditMapper() *Mapper { return &Mapper{dataset: DatasetAudit, rawKey: "audit"} }

// NewSessionMapper returns the mapper for session recording events.
func NewSessionMapper() *Mapper { return &Mapper{dataset: DatasetSession, rawKey: "session"} }

// WithCluster sets the cluster the events are read from: teleport.cluster
// is an event's own cluster_name, or this.
func (m *Mapper) WithCluster(name string) *Mapper {
	m.cluster = name
	return m
}

// TagPayloadUnreadable marks an event whose payload could not be decoded.
const TagPayloadUnreadable = "teleport_payload_unreadable"

// TagUIDShared marks an event whose uid another, different event has.
const TagUIDShared = "teleport_uid_shared"

// rawFields turns the event's payload into the raw document under
// teleport.<dataset>, in place: a value whose form (object or not) is not
// the one mapped for its key moves to the key's alternate (see
// rawConflicts). Where each value then goes is fit's (fit.go).
func rawFields(f mapstr.M) mapstr.M {
	var moved []string
	for k, v := range f {
		if c, ok := rawConflicts[k]; ok {
			if _, isObject := v.(mapstr.M); isObject != c.wantObject {
				moved = append(moved, k)
			}
		}
	}
	for _, k := range moved {
		v := f[k]
		delete(f, k)
		keep(f, rawConflicts[k].alt, v)
	}
	return f
}

// Map converts one event. now is used as @timestamp for the rare event
// without a time (it is then tagged so that it can be found).
//
// The event's Fields become the document's: the event is not to be used
// after.
func (m *Mapper) Map(ev *event.Event, now time.Time) beat.Event {
	var tags []string
	if err := ev.Load(); err != nil {
		// Cannot happen for an event the decoder returned (it checked the
		// payload); the event is kept, with what its header says.
		tags = append(tags, TagPayloadUnreadable)
	}
	raw := rawFields(ev.Fields)
	tp := mapstr.M{m.rawKey: raw}
	fields := mapstr.M{"teleport": tp, "ecs": mapstr.M{"version": ECSVersion}}
	// The cluster, for filtering by cluster when one beat reads several.
	if c, _ := raw["cluster_name"].(string); c != "" {
		tp["cluster"] = c
	} else if m.cluster != "" {
		tp["cluster"] = m.cluster
	}

	ts := now
	if !ev.Time.IsZero() {
		ts = ev.Time
	} else if s, ok := raw["time"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			ts = t
		} else {
			tags = append(tags, "teleport_missing_time")
		}
	} else {
		tags = append(tags, "teleport_missing_time")
	}

	typ := ev.Type
	if typ == "" {
		typ, _ = raw["event"].(string)
	}
	ecsEvent := mapstr.M{
		"kind":    "event",
		"module":  Module,
		"dataset": m.dataset,
	}
	if typ != "" {
		ecsEvent["action"] = typ
	}
	code, _ := raw["code"].(string)
	if code != "" {
		ecsEvent["code"] = code
	}
	id := ev.Key()
	if uid := ev.SharedUID(); uid != "" {
		// Another event with different content has this uid: this one is
		// stored under its uid and a hash of its content (the reader
		// warned), and event.id stays the uid.
		ecsEvent["id"] = uid
		tags = append(tags, TagUIDShared)
		m.uidCollisions.Add(1)
	} else {
		ecsEvent["id"] = id
	}
	if outcome := outcomeOf(raw, code); outcome != "" {
		ecsEvent["outcome"] = outcome
	}
	fields["event"] = ecsEvent

	normalize(raw)
	placed := fitRaw(raw)
	if len(placed.misfits) > 0 {
		tp[MisfitsField] = placed.misfits
		tags = append(tags, TagMisfit)
		m.misfits.Add(1)
	}
	if len(placed.unmapped) > 0 {
		tp[UnmappedField] = placed.unmapped
	}
	if len(placed.long) > 0 {
		tp[LongValuesField] = placed.long
	}
	if placed.moved > 0 {
		tags = append(tags, TagMoved)
		m.moved.Add(1)
	}
	if len(tags) > 0 {
		fields["tags"] = tags
	}
	info, known := LookupEventType(typ)
	if !known {
		if g, ok := guessEventType(typ, code); ok {
			info = &g
		}
	}
	enrich(fields, ecsEvent, raw, typ, info, ts)

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
