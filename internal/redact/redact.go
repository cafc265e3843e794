// Package redact hides secrets in what teleportbeat prints: the
// configuration `export config` shows, and the addresses its log lines
// name. One set of rules for both, so that a secret hidden in one place is
// hidden everywhere.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a secret.
const Mask = "[redacted]"

// secretWords are the words that make a setting's name a secret's:
// password, passphrase, api_key, service_token, access_token, secret,
// Authorization, proxy_auth, cloud.auth, ssl.key (a path as often as the
// PEM itself, and the key's name tells nothing the reader needs).
var secretWords = []string{"pass", "secret", "token", "auth", "key", "credential", "cookie", "signature"}

// IsSecretKey reports whether a setting named k holds a secret.
func IsSecretKey(k string) bool {
	lk := strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(lk, w) {
			return true
		}
	}
	return false
}

// opaqueParents are the settings whose every value may be a credential:
// HTTP headers (X-Api-Key, X-Auth-Token, ...) and query parameters
// (output.elasticsearch.parameters, ?token=...).
var opaqueParents = map[string]bool{"headers": true, "parameters": true, "params": true, "query": true}

// Config replaces the secrets of a configuration tree (as go-ucfg unpacks
// it: maps, lists, strings), in place: the value of every setting whose
// name names a secret (IsSecretKey), every value under headers and
// parameters, the user information and query values of URLs, and private
// keys given inline.
func Config(v any) {
	walk(v, false)
}

func walk(v any, opaque bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if opaque || IsSecretKey(k) || inlineKey(val) {
				t[k] = Mask
				continue
			}
			if s, ok := val.(string); ok {
				t[k] = URL(s)
				continue
			}
			walk(val, opaqueParents[strings.ToLower(k)])
		}
	case []any:
		for i, val := range t {
			if opaque || inlineKey(val) {
				t[i] = Mask
				continue
			}
			if s, ok := val.(string); ok {
				t[i] = URL(s)
				continue
			}
			walk(val, false)
		}
	}
}

// inlineKey reports whether a value is a PEM private key itself.
func inlineKey(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "PRIVATE KEY")
}

// URL hides what a URL or address may carry of a credential: its user
// information (https://user:pass@host, and user:pass@host:port without a
// scheme) and the values of its query (?token=...). Anything that is not a
// URL is returned as it is.
func URL(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(s, "?") {
		return s
	}
	if !strings.Contains(s, "://") {
		// host:port forms: user:pass@host:9200
		if at := strings.LastIndexByte(s, '@'); at > 0 && !strings.ContainsAny(s[:at], "/ ") {
			return Mask + "@" + s[at+1:]
		}
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		// Not parseable, but it looks like a URL: cut what could be a
		// credential.
		if at := strings.LastIndexByte(s, '@'); at > 0 {
			if i := strings.Index(s, "://"); i >= 0 && i < at {
				s = s[:i+3] + Mask + s[at:]
			}
		}
		if q := strings.IndexByte(s, '?'); q >= 0 {
			s = s[:q+1] + Mask
		}
		return s
	}
	changed := false
	if u.User != nil {
		u.User = url.User(Mask)
		changed = true
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Mask}
		}
		u.RawQuery = q.Encode()
		changed = true
	}
	if !changed {
		return s
	}
	out := u.String()
	return strings.NewReplacer(url.PathEscape(Mask), Mask, url.QueryEscape(Mask), Mask).Replace(out)
}
