package kibanamustache

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRendersAsKibanaDoes: the cases of Kibana's renderMustacheString
// teleportbeat's templates rely on.
func TestRendersAsKibanaDoes(t *testing.T) {
	vars := map[string]any{
		"rule": map[string]any{"name": `Login "new" <country>`},
		"context": map[string]any{"alerts": []any{
			map[string]any{"kibana.alert.uuid": "u1", "user.name": "alice", "source": map[string]any{"ip": "203.0.113.4"}},
			map[string]any{"kibana": map[string]any{"alert": map[string]any{"uuid": "u2"}}, "user": map[string]any{"id": "7"}},
		}},
		"user": map[string]any{"name": "outer"},
		"n":    3.5,
		"yes":  true,
		"none": nil,
		"list": []any{},
	}
	for tpl, want := range map[string]string{
		// Escaped for a JSON string; {{{ }}} and {{& }} are not escaped.
		`{{rule.name}}`:   `Login \"new\" <country>`,
		`{{{rule.name}}}`: `Login "new" <country>`,
		`{{& rule.name}}`: `Login "new" <country>`,
		// A key with dots is found as nested objects, in arrays too.
		`{{context.alerts.0.user.name}} {{context.alerts.0.kibana.alert.uuid}}`: `alice u1`,
		// Numbers and booleans as JavaScript writes them; null and missing as nothing.
		`{{n}} {{yes}} [{{none}}] [{{missing.name}}]`: `3.5 true [] []`,
		// A section over an array renders once per element, a name not in
		// the element is looked up around it (the second alert has a user
		// without a name: its view misses user.name, the top has one).
		`{{#context.alerts}}{{kibana.alert.uuid}}={{user.name}};{{/context.alerts}}`:    `u1=alice;u2=outer;`,
		`{{^list}}empty{{/list}}{{#list}}x{{/list}}{{^yes}}no{{/yes}}{{#yes}}y{{/yes}}`: `emptyy`,
		`{{! a comment }}ok`:        `ok`,
		`{{context.alerts.length}}`: `2`,
	} {
		got, err := Render(tpl, vars, JSON)
		require.NoError(t, err, tpl)
		require.Equal(t, want, got, tpl)
	}

	// An object renders as its JSON (Kibana's toString), an array as its
	// elements joined by commas: [{{{context.alerts}}}] is a JSON array.
	got, err := Render(`[{{{context.alerts}}}]`, vars, JSON)
	require.NoError(t, err)
	var alerts []map[string]any
	require.NoError(t, json.Unmarshal([]byte(got), &alerts), got)
	require.Len(t, alerts, 2)
	require.Equal(t, "alice", alerts[0]["user"].(map[string]any)["name"], "nested from user.name")
	require.Equal(t, "alice", alerts[0]["user.name"], "and the dotted key kept")

	for _, bad := range []string{`{{#a}}x`, `{{/a}}`, `{{> partial}}`, `{{=<% %>=}}`, `{{a`} {
		_, err := Render(bad, vars, JSON)
		require.Error(t, err, bad)
	}
}
