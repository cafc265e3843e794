// Package kibanamustache renders a Kibana action's parameter template as
// Kibana does (x-pack/plugins/actions/server/lib/mustache_renderer.ts,
// renderMustacheString, on mustache.js): the variables are cloned through
// JSON, a key with dots ("user.name") is also merged in as nested objects,
// an object renders as its JSON, an array as its elements joined by
// commas, and a {{value}} is escaped for the connector (the Webhook
// connector's body: "json", the inside of a JSON string; {{{value}}} is
// not escaped).
//
// It is test support: the Kibana stand-in (internal/testkit/estest) runs
// the detection rules' ready actions through it, so that what teleportbeat's
// response endpoint reads is what Kibana would send. It renders the
// mustache.js tags Kibana's templates use: variables, {{{ }}} and {{& }},
// sections and inverted sections, comments; it refuses partials and
// delimiter changes.
package kibanamustache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/teleportbeat/teleportbeat/internal/jsonvalue"
)

// Escape is how a {{value}} is escaped: "json" or "none".
type Escape string

// Escapes.
const (
	JSON Escape = "json"
	None Escape = "none"
)

// Render renders a template with variables (JSON-like values: maps,
// slices, strings, numbers, booleans, nil).
func Render(template string, variables map[string]any, escape Escape) (string, error) {
	// JSON.parse(JSON.stringify(variables)), then convertDotVariables.
	view, err := jsonvalue.Through(variables)
	if err != nil {
		return "", fmt.Errorf("variables: %w", err)
	}
	convertDots(view)
	tokens, err := parse(template)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	render(&out, tokens, &frame{view: view}, escape)
	return out.String(), nil
}

// convertDots adds, for each key with dots, the nested objects it names,
// merged into what is there (lodash merge), then walks every object and
// array.
func convertDots(v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.Contains(k, ".") {
				merge(v, build(k, v[k]))
			}
		}
		for _, k := range keys {
			convertDots(v[k])
		}
	case []any:
		for _, e := range v {
			convertDots(e)
		}
	}
}

func build(key string, value any) map[string]any {
	parts := strings.Split(key, ".")
	out := map[string]any{}
	cur := out
	for i, p := range parts {
		if i == len(parts)-1 {
			cur[p] = value
			break
		}
		next := map[string]any{}
		cur[p] = next
		cur = next
	}
	return out
}

// merge is lodash's merge for JSON values: objects merge key by key, a
// defined source value replaces a plain one.
func merge(dst, src map[string]any) {
	for k, sv := range src {
		dm, dok := dst[k].(map[string]any)
		sm, sok := sv.(map[string]any)
		if dok && sok {
			merge(dm, sm)
			continue
		}
		if sok {
			cp := map[string]any{}
			merge(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = sv
	}
}

type token struct {
	kind  byte // 't' text, 'n' escaped name, '&' unescaped name, '#' section, '^' inverted
	value string
	kids  []token
}

func parse(tpl string) ([]token, error) {
	type open struct {
		tok  token
		list []token
	}
	var stack []open
	var list []token
	for len(tpl) > 0 {
		i := strings.Index(tpl, "{{")
		if i < 0 {
			list = append(list, token{kind: 't', value: tpl})
			break
		}
		if i > 0 {
			list = append(list, token{kind: 't', value: tpl[:i]})
		}
		tpl = tpl[i+2:]
		closing := "}}"
		triple := strings.HasPrefix(tpl, "{")
		if triple {
			tpl, closing = tpl[1:], "}}}"
		}
		j := strings.Index(tpl, closing)
		if j < 0 {
			return nil, fmt.Errorf("unclosed tag at %q", tpl)
		}
		tag := strings.TrimSpace(tpl[:j])
		tpl = tpl[j+len(closing):]
		if triple {
			list = append(list, token{kind: '&', value: tag})
			continue
		}
		kind := byte('n')
		if tag != "" && strings.ContainsRune("#^/&!>=", rune(tag[0])) {
			kind = tag[0]
			tag = strings.TrimSpace(tag[1:])
		}
		switch kind {
		case '!':
		case '>', '=':
			return nil, fmt.Errorf("tag {{%c%s}}: partials and delimiter changes are not rendered here", kind, tag)
		case '#', '^':
			stack = append(stack, open{tok: token{kind: kind, value: tag}, list: list})
			list = nil
		case '/':
			if len(stack) == 0 || stack[len(stack)-1].tok.value != tag {
				return nil, fmt.Errorf("unopened section {{/%s}}", tag)
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			top.tok.kids = list
			list = append(top.list, top.tok)
		default:
			list = append(list, token{kind: kind, value: tag})
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed section {{#%s}}", stack[len(stack)-1].tok.value)
	}
	return list, nil
}

// frame is mustache.js' Context: a view and the context around it.
type frame struct {
	view   any
	parent *frame
}

// lookup is mustache.js' Context.lookup: "." is the view; a name with
// dots must resolve to its last part in one view, else the view around it
// is tried.
func (f *frame) lookup(name string) any {
	if name == "." {
		return f.view
	}
	names := strings.Split(name, ".")
	for c := f; c != nil; c = c.parent {
		v, hit := c.view, false
		for i, n := range names {
			next, ok := child(v, n)
			if i == len(names)-1 {
				hit = ok
			}
			v = next
			if !ok {
				break
			}
		}
		if hit {
			return v
		}
	}
	return nil
}

func child(v any, name string) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		c, ok := v[name]
		return c, ok
	case []any:
		if name == "length" {
			return float64(len(v)), true
		}
		i, err := strconv.Atoi(name)
		if err != nil || i < 0 || i >= len(v) {
			return nil, false
		}
		return v[i], true
	case string:
		if name == "length" {
			return float64(len([]rune(v))), true
		}
	}
	return nil, false
}

func render(out *strings.Builder, tokens []token, f *frame, escape Escape) {
	for _, t := range tokens {
		switch t.kind {
		case 't':
			out.WriteString(t.value)
		case 'n', '&':
			v := f.lookup(t.value)
			if v == nil {
				continue
			}
			s := str(v)
			if t.kind == 'n' && escape == JSON {
				s = escapeJSON(s)
			}
			out.WriteString(s)
		case '#':
			v := f.lookup(t.value)
			if l, ok := v.([]any); ok {
				for _, e := range l {
					render(out, t.kids, &frame{view: e, parent: f}, escape)
				}
				continue
			}
			if truthy(v) {
				render(out, t.kids, &frame{view: v, parent: f}, escape)
			}
		case '^':
			v := f.lookup(t.value)
			if l, ok := v.([]any); (ok && len(l) == 0) || (!ok && !truthy(v)) {
				render(out, t.kids, f, escape)
			}
		}
	}
}

// truthy is JavaScript's truthiness for JSON values.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case float64:
		return v != 0 && !math.IsNaN(v)
	}
	return true
}

// str is `${value}` with Kibana's toString on objects: JSON for an
// object, elements joined by commas for an array.
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = str(e)
		}
		return strings.Join(parts, ",")
	}
	return jsonString(v)
}

func jsonString(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // JSON.stringify leaves <, > and & as they are
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// escapeJSON is Kibana's escapeJSON: JSON.stringify(`${value}`) without
// its quotes.
func escapeJSON(s string) string {
	q := jsonString(s)
	return q[1 : len(q)-1]
}
