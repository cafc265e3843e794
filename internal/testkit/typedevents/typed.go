// Package typed turns the Teleport double's events into Teleport's typed
// events (events.OneOf), as an Auth Service serves them from its older,
// typed methods (SearchEvents, StreamSessionEvents). It is apart from
// package teleporttest because it needs the event-type table of package
// ecs, whose tests import teleporttest.
package typedevents

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/gravitational/trace"

	apievents "github.com/gravitational/teleport/api/types/events"

	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

var (
	structsOnce sync.Once
	structs     map[string]reflect.Type // struct name -> type, of OneOf's members
)

func structOf(name string) (reflect.Type, bool) {
	structsOnce.Do(func() {
		structs = map[string]reflect.Type{}
		var o apievents.OneOf
		for _, w := range o.XXX_OneofWrappers() {
			t := reflect.TypeOf(w).Elem().Field(0).Type.Elem()
			structs[t.Name()] = t
		}
	})
	t, ok := structs[name]
	return t, ok
}

// OneOf converts e: into the struct Teleport decodes its type into, or,
// for a type the pinned API does not know, into events.Unknown with the
// payload as its data, as Teleport itself does with such events.
func OneOf(e *teleporttest.Event) (*apievents.OneOf, error) {
	payload, err := e.Proto().GetUnstructured().MarshalJSON()
	if err != nil {
		return nil, trace.Wrap(err)
	}
	var ae apievents.AuditEvent
	if et, ok := ecs.LookupEventType(e.Type); ok {
		if t, ok := structOf(et.Struct); ok {
			v := reflect.New(t)
			if err := json.Unmarshal(payload, v.Interface()); err != nil {
				return nil, fmt.Errorf("event %s (%s) as %s: %w", e.ID, e.Type, et.Struct, err)
			}
			ae = v.Interface().(apievents.AuditEvent)
		}
	}
	if ae == nil {
		var fields struct {
			Code string `json:"code"`
			UID  string `json:"uid"`
		}
		_ = json.Unmarshal(payload, &fields)
		ae = &apievents.Unknown{
			Metadata:    apievents.Metadata{Type: "unknown", Code: "TCC00E", ID: fields.UID, Time: e.Time, Index: e.Index},
			UnknownType: e.Type,
			UnknownCode: fields.Code,
			Data:        string(payload),
		}
	}
	return apievents.ToOneOf(ae)
}
