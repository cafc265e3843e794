package estest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// A document as Elasticsearch's parser sees it: fields in the order they
// were written (dynamic mappings, and so which of two conflicting values
// is refused, depend on it), numbers with their text (an integer token
// and a floating-point token are mapped differently).

// member is one field of a JSON object.
type member struct {
	name  string
	value any // object, []any, string, json.Number, bool or nil
}

// object is a JSON object with its fields in order.
type object []member

// parseDocument reads one JSON object, as the bulk API's source line.
func parseDocument(src []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("failed to parse: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		// DocumentParser.validateStart
		return nil, fmt.Errorf("Malformed content, must start with an object")
	}
	obj, err := readObject(dec)
	if err != nil {
		return nil, fmt.Errorf("failed to parse: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		// DocumentParser.validateEnd
		return nil, fmt.Errorf("Malformed content, found extra data after parsing")
	}
	return obj, nil
}

func readObject(dec *json.Decoder) (object, error) {
	var obj object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("expected a field name, found %v", tok)
		}
		v, err := readValue(dec)
		if err != nil {
			return nil, err
		}
		obj = append(obj, member{name, v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	return obj, nil
}

func readValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return readObject(dec)
		case '[':
			var list []any
			for dec.More() {
				v, err := readValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			if list == nil {
				list = []any{}
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// isFloatToken reports whether a JSON number was written as a
// floating-point token (Jackson's VALUE_NUMBER_FLOAT), not an integer.
func isFloatToken(n json.Number) bool {
	return strings.ContainsAny(string(n), ".eE")
}

// preview is the value as Elasticsearch's "Preview of field's value"
// shows it (Java's toString of the parsed value, cut).
func preview(v any) string {
	var s string
	switch x := v.(type) {
	case object:
		var b strings.Builder
		b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(m.name)
			b.WriteByte('=')
			b.WriteString(preview(m.value))
		}
		b.WriteByte('}')
		s = b.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = preview(e)
		}
		s = "[" + strings.Join(parts, ", ") + "]"
	case nil:
		s = "null"
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
