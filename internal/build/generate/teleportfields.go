package generate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gravitational/teleport/api/types/events"
)

// RawField is one field of a raw Teleport event (under teleport.audit or
// teleport.session), derived from the event structs of the pinned
// teleport/api.
type RawField struct {
	Path    string   // dotted path
	Type    string   // Elasticsearch type: keyword, long, double, boolean, date, ip, flattened, group
	Owners  []string // event structs that carry it
	Text    bool     // also indexed as text (long free-form values)
	Comment string
}

// Conflict is a path that holds an object in some event types and a
// value in others. Elasticsearch cannot map both; the minority form is
// moved by the mapper to Alt.
type Conflict struct {
	Path       string
	WantObject bool   // the mapped form is an object
	Alt        string // where the other form goes
}

// RawFields is the derived field set.
type RawFields struct {
	Fields    []RawField
	Conflicts []Conflict
	IPs       []string // ip-typed paths (an invalid value goes to <path>_text)
}

// Fields with long free-form values, also indexed as text.
var textFields = map[string]bool{
	"command": true, "db_query": true, "query": true, "message": true, "error": true,
	"exitError": true, "reason": true, "initial_command": true, "raw_query": true, "request_path": true,
}

// Fields that hold bare IP addresses (BPF-recorded connection endpoints).
var ipFields = map[string]bool{"src_addr": true, "dst_addr": true}

// eventsPkg is the import path of the event structs.
const eventsPkg = "github.com/gravitational/teleport/api/types/events"

type node struct {
	kinds    map[string]map[string]bool // ES type -> owners
	children map[string]*node
	owners   map[string]bool // owners of the object form
}

func newNode() *node {
	return &node{kinds: map[string]map[string]bool{}, children: map[string]*node{}, owners: map[string]bool{}}
}

func (n *node) child(name string) *node {
	c, ok := n.children[name]
	if !ok {
		c = newNode()
		n.children[name] = c
	}
	return c
}

func (n *node) addKind(kind, owner string) {
	if n.kinds[kind] == nil {
		n.kinds[kind] = map[string]bool{}
	}
	n.kinds[kind][owner] = true
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	jsonMarshal  = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	stringerType = reflect.TypeOf((*fmt.Stringer)(nil)).Elem()
)

// leafKind maps a Go type to an Elasticsearch leaf type, or "" when the
// type is a struct to walk.
func leafKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "date"
	case t == durationType:
		return "long"
	}
	switch t.Kind() {
	case reflect.String:
		return "keyword"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "double"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t.Name() != "" && t.PkgPath() != "" && (t.Implements(stringerType) || reflect.PointerTo(t).Implements(stringerType)) {
			return "keyword" // a protobuf enum
		}
		return "long"
	case reflect.Map, reflect.Interface:
		return "flattened"
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Uint8 {
			return "keyword" // []byte: base64 text
		}
		if k := leafKind(e); k != "" {
			return k
		}
		return "" // a list of objects: walk the element
	case reflect.Struct:
		if t.PkgPath() != eventsPkg {
			// Resources (types.SAMLConnectorV2, types.LockTarget, ...)
			// and wrappers: free-form, so that no event can conflict.
			return "flattened"
		}
		if t.Implements(jsonMarshal) || reflect.PointerTo(t).Implements(jsonMarshal) {
			return "flattened" // events.Struct and its kin encode themselves
		}
		return ""
	}
	return "keyword"
}

func walkStruct(n *node, t reflect.Type, owner string, depth int) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if depth > 8 {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || strings.HasPrefix(f.Name, "XXX_") {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if name == "" {
			// Embedded metadata (json:"") is inlined by the encoder.
			if ft.Kind() == reflect.Struct && leafKind(ft) == "" {
				walkStruct(n, ft, owner, depth+1)
			}
			continue
		}
		// Teleport writes some keys with dots ("addr.local"): they are
		// objects to Elasticsearch.
		cur := n
		parts := strings.Split(name, ".")
		for i, part := range parts {
			cur = cur.child(part)
			if i < len(parts)-1 {
				cur.owners[owner] = true
			}
		}
		if k := leafKind(ft); k != "" {
			cur.addKind(k, owner)
			continue
		}
		cur.owners[owner] = true
		elem := ft
		if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array {
			elem = ft.Elem()
		}
		walkStruct(cur, elem, owner, depth+1)
	}
}

// widen merges leaf types seen for one path into one that accepts them all.
func widen(kinds []string) string {
	if len(kinds) == 1 {
		return kinds[0]
	}
	set := map[string]bool{}
	for _, k := range kinds {
		set[k] = true
	}
	if len(set) == 2 && set["long"] && set["double"] {
		return "double"
	}
	// keyword accepts numbers, booleans and dates as text.
	return "keyword"
}

// EventStructs returns the event structs of the pinned API, by name.
func EventStructs() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var o events.OneOf
	for _, w := range o.XXX_OneofWrappers() {
		t := reflect.TypeOf(w).Elem().Field(0).Type.Elem()
		out[t.Name()] = t
	}
	return out
}

// DeriveRawFields walks every event struct of the pinned teleport/api.
func DeriveRawFields() RawFields {
	root := newNode()
	structs := EventStructs()
	names := make([]string, 0, len(structs))
	for n := range structs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		walkStruct(root, structs[n], n, 0)
	}
	var out RawFields
	var visit func(n *node, path string)
	visit = func(n *node, path string) {
		keys := make([]string, 0, len(n.children))
		for k := range n.children {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c := n.children[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			var scalars []string
			scalarOwners, objOwners := map[string]bool{}, map[string]bool{}
			flattened := false
			for kind, owners := range c.kinds {
				if kind == "flattened" {
					flattened = true
					for o := range owners {
						objOwners[o] = true
					}
					continue
				}
				scalars = append(scalars, kind)
				for o := range owners {
					scalarOwners[o] = true
				}
			}
			sort.Strings(scalars)
			for o := range c.owners {
				objOwners[o] = true
			}
			hasChildren := len(c.children) > 0
			isObject := hasChildren || flattened
			nObj := len(objOwners)
			switch {
			case !isObject:
				typ := widen(scalars)
				if ipFields[p] {
					typ = "ip"
					out.IPs = append(out.IPs, p)
					out.Fields = append(out.Fields, RawField{Path: p + "_text", Type: "keyword", Owners: slices.Sorted(maps.Keys(scalarOwners)),
						Comment: "a value of " + p + " that is not an IP address"})
				}
				out.Fields = append(out.Fields, RawField{Path: p, Type: typ, Owners: slices.Sorted(maps.Keys(scalarOwners)), Text: textFields[p]})
			case len(scalars) == 0 && !flattened:
				visit(c, p)
			case len(scalars) == 0:
				// Free-form objects: one flattened field takes them all.
				out.Fields = append(out.Fields, RawField{Path: p, Type: "flattened", Owners: slices.Sorted(maps.Keys(objOwners))})
			case nObj > len(scalarOwners):
				// Both an object and a value, the object more common: it
				// keeps the name, values move to <path>_value.
				out.Conflicts = append(out.Conflicts, Conflict{Path: p, WantObject: true, Alt: p + "_value"})
				out.Fields = append(out.Fields, RawField{Path: p + "_value", Type: widen(scalars), Owners: slices.Sorted(maps.Keys(scalarOwners)),
					Comment: "the value form of " + p + ", which other event types use as an object"})
				if flattened {
					out.Fields = append(out.Fields, RawField{Path: p, Type: "flattened", Owners: slices.Sorted(maps.Keys(objOwners))})
				} else {
					visit(c, p)
				}
			default:
				// The value at least as common (values are the more
				// searchable form): objects move to <path>_object.
				out.Conflicts = append(out.Conflicts, Conflict{Path: p, WantObject: false, Alt: p + "_object"})
				out.Fields = append(out.Fields, RawField{Path: p, Type: widen(scalars), Owners: slices.Sorted(maps.Keys(scalarOwners)), Text: textFields[p]})
				out.Fields = append(out.Fields, RawField{Path: p + "_object", Type: "flattened", Owners: slices.Sorted(maps.Keys(objOwners)),
					Comment: "the object form of " + p + ", which other event types use as a value"})
			}
		}
	}
	visit(root, "")
	sort.Slice(out.Fields, func(i, j int) bool { return out.Fields[i].Path < out.Fields[j].Path })
	return out
}

func describe(f RawField) string {
	if f.Comment != "" {
		return "Teleport: " + f.Comment + "."
	}
	owners := f.Owners
	more := ""
	if len(owners) > 3 {
		more = fmt.Sprintf(" and %d more", len(owners)-3)
		owners = owners[:3]
	}
	return fmt.Sprintf("Teleport event field, in %s%s.", strings.Join(owners, ", "), more)
}

// fieldsYAML renders the raw fields as nested fields.yml entries under one
// group, indented by indent spaces.
func fieldsYAML(fields []RawField, indent int) string {
	type tree struct {
		field    *RawField
		children map[string]*tree
		order    []string
	}
	root := &tree{children: map[string]*tree{}}
	for i := range fields {
		cur := root
		parts := strings.Split(fields[i].Path, ".")
		for _, p := range parts {
			nxt, ok := cur.children[p]
			if !ok {
				nxt = &tree{children: map[string]*tree{}}
				cur.children[p] = nxt
				cur.order = append(cur.order, p)
			}
			cur = nxt
		}
		cur.field = &fields[i]
	}
	var b strings.Builder
	var render func(t *tree, ind int)
	render = func(t *tree, ind int) {
		names := append([]string(nil), t.order...)
		sort.Strings(names)
		pad := strings.Repeat(" ", ind)
		for _, name := range names {
			c := t.children[name]
			fmt.Fprintf(&b, "%s- name: %s\n", pad, yamlString(name))
			if c.field == nil {
				fmt.Fprintf(&b, "%s  type: group\n%s  fields:\n", pad, pad)
				render(c, ind+4)
				continue
			}
			fmt.Fprintf(&b, "%s  type: %s\n", pad, c.field.Type)
			if c.field.Type == "keyword" {
				fmt.Fprintf(&b, "%s  ignore_above: 1024\n", pad)
			}
			if c.field.Text {
				fmt.Fprintf(&b, "%s  multi_fields:\n%s    - name: text\n%s      type: match_only_text\n", pad, pad, pad)
			}
			fmt.Fprintf(&b, "%s  description: %s\n", pad, yamlString(describe(*c.field)))
		}
	}
	render(root, indent)
	return b.String()
}

func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TeleportFieldsYML is teleportbeat's _meta/fields.yml: the teleport group
// with the raw fields of audit and session events.
func TeleportFieldsYML(rf RawFields) []byte {
	var b bytes.Buffer
	b.WriteString(`# Generated by ` + "`go tool mage update`" + ` from the event structs of the pinned
# github.com/gravitational/teleport/api (types/events, the members of OneOf).
# DO NOT EDIT.
- key: teleport
  title: Teleport
  description: >
    Teleport audit events and session recording events, as Teleport's audit
    API returns them. ECS fields derived from them are at the top level.
  fields:
    - name: teleport
      type: group
      description: Fields from Teleport.
      fields:
`)
	for _, ds := range []struct{ name, desc string }{
		{"audit", "An audit event, as Teleport logs it (dataset teleport.audit)."},
		{"session", "An event of a session recording (dataset teleport.session)."},
	} {
		fmt.Fprintf(&b, "        - name: %s\n          type: group\n          description: %s\n          fields:\n", ds.name, yamlString(ds.desc))
		b.WriteString(fieldsYAML(rf.Fields, 12))
	}
	// Values that do not fit their field's type (internal/ecs/fit.go).
	b.WriteString(`        - name: misfits
          type: flattened
          description: >
            Raw values that do not fit the type their field is mapped to (an
            object where a keyword is mapped, a time that is not RFC 3339),
            moved here unchanged under their path; the event is tagged
            teleport_field_misfit.
        - name: unmapped
          type: flattened
          description: >
            Raw values at paths this version's template does not know (fields
            of newer Teleport versions), whatever their shape, keyed by their
            path under teleport.audit or teleport.session (query them as
            teleport.unmapped.<path>). Keys Elasticsearch cannot take as field
            names ("", ".x", "x..y") and dotted keys that would overwrite
            another value are kept here too, under their full key, and the
            event is tagged teleport_field_moved.
        - name: long_values
          type: match_only_text
          description: >
            Strings too long for a flattened field (over 8191 bytes: labels,
            misfits, unmapped values), as "path=value"; the event is tagged
            teleport_field_moved.
        - name: cluster
          type: keyword
          ignore_above: 1024
          description: >
            The Teleport cluster the event comes from: the event's own
            cluster_name, or the cluster teleportbeat read it from (one beat
            can read several: teleportbeat.clusters).
        - name: resource
          type: group
          description: The resource an event is about.
          fields:
            - name: kind
              type: keyword
              description: "What the resource is: db, kube, app, desktop or node (SSH)."
            - name: name
              type: keyword
              ignore_above: 1024
              description: Its name (database service, Kubernetes cluster, application, desktop or node host name).
        - name: certificate
          type: group
          description: What teleportbeat derives from a cert.create event.
          fields:
            - name: ttl
              type: long
              description: The certificate's lifetime in seconds (its expiry minus the event's time).
            - name: issuer
              type: keyword
              ignore_above: 1024
              description: >
                Who issued the certificate the action used, when it is not its
                holder (Teleport's impersonator: an admin or the Auth host running
                tctl auth sign, a service impersonating a user). The holder is
                user.name (user.target.name for the cert.create of the issue itself).
        - name: actor
          type: group
          description: What kind of identity acted (user.name).
          fields:
            - name: kind
              type: keyword
              description: >
                human, bot (a Machine ID bot, bot-<name>), host (a host or service
                identity, <uuid>.<cluster>) or system (Teleport itself).
        - name: truncated
          type: group
          description: >
            Set on an event an output refused as too large and that was sent
            again with its largest strings cut (tagged teleport_truncated); the
            whole event is in the dead-letter file under path.data.
          fields:
            - name: original_bytes
              type: long
              description: Size of the event's JSON before it was cut.
            - name: fields
              type: keyword
              description: The fields cut.
`)
	return b.Bytes()
}

// RawFieldsGo is internal/ecs/rawfields_gen.go: what the mapper must know
// of the mapping to keep every event indexable.
func RawFieldsGo(rf RawFields) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`// Code generated by ` + "`go tool mage update`" + ` from the pinned teleport/api; DO NOT EDIT.

package ecs

// rawConflicts are paths that are objects in some Teleport event types and
// values in others; the form that is not mapped moves to Alt.
var rawConflicts = map[string]rawConflict{
`)
	for _, c := range rf.Conflicts {
		fmt.Fprintf(&b, "\t%q: {wantObject: %v, alt: %q},\n", c.Path, c.WantObject, c.Alt)
	}
	b.WriteString("}\n\n// rawIPFields are mapped as ip; a value that is not an IP moves to <path>_text.\nvar rawIPFields = []string{\n")
	for _, p := range rf.IPs {
		fmt.Fprintf(&b, "\t%q,\n", p)
	}
	b.WriteString("}\n\n// rawFieldTypes is the Elasticsearch type of every known raw field.\nvar rawFieldTypes = map[string]string{\n")
	for _, f := range rf.Fields {
		fmt.Fprintf(&b, "\t%q: %q,\n", f.Path, f.Type)
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
