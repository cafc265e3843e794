package kql

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

var types = Types{
	"event.action":             "keyword",
	"event.outcome":            "keyword",
	"user.name":                "keyword",
	"process.name":             "keyword",
	"process.args":             "keyword",
	"source.ip":                "ip",
	"teleport.audit.success":   "boolean",
	"teleport.certificate.ttl": "long",
	"teleport.audit.login":     "keyword",
	"message":                  "match_only_text",
	"teleport.audit.mfa_device.mfa_device_uuid": "keyword",
}

func doc() map[string]any {
	return mapstr.M{
		"event":   mapstr.M{"action": "user.login", "outcome": "failure"},
		"user":    mapstr.M{"name": "alice"},
		"source":  mapstr.M{"ip": "203.0.113.5"},
		"process": mapstr.M{"name": "nmap", "args": []any{"-sS", "10.0.0.0/24"}},
		"teleport": mapstr.M{
			"audit":       mapstr.M{"success": false, "login": "root", "mfa_device.mfa_device_uuid": "x"},
			"certificate": mapstr.M{"ttl": int64(691200)},
		},
	}
}

func TestMatch(t *testing.T) {
	for q, want := range map[string]bool{
		`event.action: "user.login"`:                                  true,
		`event.action: user.login`:                                    true,
		`event.action: user.logout`:                                   false,
		`event.action: user.*`:                                        true,
		`event.action: "user.*"`:                                      false, // quoted: literal
		`event.action: us?r.login`:                                    false, // ? is no wildcard in KQL
		`event.action: user\*`:                                        false, // an escaped * is a star
		`event.action: (exec or "user.login")`:                        true,
		`event.action: user.login and event.outcome: failure`:         true,
		`event.action: user.login and not event.outcome: failure`:     false,
		`not event.action: exec`:                                      true,
		`event.action: exec or user.name: alice`:                      true,
		`(event.action: exec or user.name: bob) and user.name: alice`: false,
		`teleport.audit.success: false`:                               true,
		`teleport.audit.success: true`:                                false,
		`teleport.certificate.ttl > 86400`:                            true,
		`teleport.certificate.ttl >= 691200`:                          true,
		`teleport.certificate.ttl < 691200`:                           false,
		`teleport.certificate.ttl: 691200`:                            true,
		`source.ip: "203.0.113.0/24"`:                                 true,
		`source.ip: 10.0.0.0/8`:                                       false,
		`process.args: "10.0.0.0/24"`:                                 true, // any element of an array
		`process.args: 10.0.*`:                                        true, // wildcards cross "/"
		`teleport.audit.mfa_device.mfa_device_uuid: *`:                true, // a dotted key is the same field
		`user.name: *`:                                                true,
		`teleport.audit.login: *`:                                     true,
		`not teleport.audit.login: (root or admin)`:                   false,
		`event.outcome: (failure and not success)`:                    true,
		`EVENT.action: user.login`:                                    false, // field names are case-sensitive
		`event.action: user.login AND user.name: alice`:               true,  // keywords are not
	} {
		parsed, err := Parse(q, types)
		if q == `EVENT.action: user.login` {
			require.Error(t, err, "an unknown field is refused")
			continue
		}
		require.NoError(t, err, q)
		require.Equal(t, want, parsed.Match(doc()), q)
	}
}

// The Panther kind of bug, comparing a boolean with a string, cannot pass:
// nor can a field the template does not have, text fields, or ranges on
// keywords.
func TestTypeErrors(t *testing.T) {
	for q, msg := range map[string]string{
		`teleport.audit.success: "false"`: "compare it with true or false, unquoted",
		`teleport.audit.success: no`:      "compare it with true or false",
		`teleport.certificate.ttl: long`:  "is not a number",
		`teleport.certificate.ttl > x`:    "is not a number",
		`source.ip: localhost`:            "neither an address nor a CIDR range",
		`user.nam: alice`:                 "user.nam is not in the index template",
		`message: failed`:                 "KQL matches words of analyzed text",
		`user.name > 3`:                   "only numeric ranges",
		`alice`:                           "free-text queries are not supported",
		`user.name: {x}`:                  "nested queries",
		`user.name: "alice`:               "unterminated string",
		`(user.name: alice`:               "missing )",
	} {
		_, err := Parse(q, types)
		require.ErrorContains(t, err, msg, q)
	}
}

func TestFields(t *testing.T) {
	q, err := Parse(`event.action: user.login and (user.name: a or not source.ip: 10.0.0.1) and user.name: b`, types)
	require.NoError(t, err)
	require.Equal(t, []string{"event.action", "user.name", "source.ip"}, q.Fields())
}

// TestKibanaEscapes follows Kibana's KQL grammar (kbn-es-query's
// grammar.peggy): ? is a literal character, \* a literal star, \n \r \t
// a line feed, carriage return and tab (quoted or not), \uXXXX a
// character, and a backslash before a keyword makes it a word.
func TestKibanaEscapes(t *testing.T) {
	d := mapstr.M{
		"process": mapstr.M{"name": "a?b", "args": []any{"x*y", "line1\nline2", "tab\there", "é", `back\slash`, "or", `q"uote`}},
	}
	for q, want := range map[string]bool{
		`process.name: a?b`:             true,
		`process.name: axb`:             false,
		`process.name: a*`:              true,
		`process.args: x\*y`:            true,
		`process.args: xzy`:             false,
		`process.args: x*y`:             true,
		`process.args: "x*y"`:           true,
		`process.args: "xzy"`:           false,
		`process.args: line1\nline2`:    true,
		`process.args: "line1\nline2"`:  true,
		`process.args: "line1nline2"`:   false,
		`process.args: line1nline2`:     false,
		`process.args: tab\there`:       true,
		`process.args: "tab\there"`:     true,
		`process.args: \u00e9`:          true,
		`process.args: "back\\slash"`:   true,
		`process.args: \or`:             true,
		`process.args: "q\"uote"`:       true,
		`process.args: q\"uote`:         true,
		`process.args: "line1\\nline2"`: false, // \\ is a backslash, then n
	} {
		parsed, err := Parse(q, types)
		require.NoError(t, err, q)
		require.Equal(t, want, parsed.Match(d), q)
	}
	_, err := Parse(`process.name: a\qb`, types)
	require.ErrorContains(t, err, "a backslash escapes only")
}

func TestWildcard(t *testing.T) {
	w := string(wildcardRune)
	require.True(t, wildcard("a"+w+"c", "abbbc"))
	require.True(t, wildcard(w, ""))
	require.False(t, wildcard("a?c", "abc"), "? is literal")
	require.True(t, wildcard("a?c", "a?c"))
	require.False(t, wildcard("a*c", "abc"), "a star that is not the wildcard rune is literal")
	require.True(t, wildcard(w+"/nmap", "/usr/bin/nmap"))
	require.False(t, wildcard(w+"/nmap", "/usr/bin/nmap2"))
	require.True(t, wildcard("ü"+w, "über"))
}
