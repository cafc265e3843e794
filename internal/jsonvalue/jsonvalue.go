// Package jsonvalue gives a Go value the form encoding/json reads back:
// maps of string keys, []any, float64, string, bool and nil. A rule as
// teleportbeat ships it, as Kibana stores it and as Kibana's renderer
// clones it compare alike only in that form.
package jsonvalue

import "encoding/json"

// Of returns v through JSON; v itself when it does not encode.
func Of(v any) any {
	out, err := Through(v)
	if err != nil {
		return v
	}
	return out
}

// Through returns v through JSON, or why it does not encode.
func Through(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}
