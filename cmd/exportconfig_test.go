package cmd

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v2"
)

func TestRedact(t *testing.T) {
	cfg := map[string]any{
		"output": map[string]any{"elasticsearch": map[string]any{
			"hosts": []any{"https://es:9200"}, "username": "elastic", "password": "p", "api_key": "id:key",
			"ssl":     map[string]any{"key": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n", "certificate": "/etc/cert.pem", "key_passphrase": "kp"},
			"headers": map[string]any{"Authorization": "Bearer x"},
		}},
		"list": []any{"-----BEGIN EC PRIVATE KEY-----", "plain"},
	}
	redactConfig(cfg)
	es := cfg["output"].(map[string]any)["elasticsearch"].(map[string]any)
	require.Equal(t, redacted, es["password"])
	require.Equal(t, redacted, es["api_key"])
	require.Equal(t, redacted, es["ssl"].(map[string]any)["key"])
	require.Equal(t, redacted, es["ssl"].(map[string]any)["key_passphrase"])
	require.Equal(t, redacted, es["headers"].(map[string]any)["Authorization"])
	require.Equal(t, "/etc/cert.pem", es["ssl"].(map[string]any)["certificate"], "paths are not secrets")
	require.Equal(t, "elastic", es["username"])
	require.Equal(t, []any{"https://es:9200"}, es["hosts"])
	require.Equal(t, []any{redacted, "plain"}, cfg["list"])
}

// TestRedactHidesEveryCredential: what the first redaction missed, seen
// in a bug report: cloud.auth, every request header, credentials in URLs.
func TestRedactHidesEveryCredential(t *testing.T) {
	cfg := map[string]any{
		"cloud": map[string]any{"id": "deployment:abc", "auth": "elastic:changeme"},
		"output": map[string]any{"http": map[string]any{
			"url":     "https://receiver:9880/teleport",
			"headers": map[string]any{"X-Api-Key": "k1", "X-Auth-Token": "t1", "Content-Type": "application/json"},
		}, "elasticsearch": map[string]any{
			"hosts":     []any{"https://elastic:secret@es.example.com:9200", "https://es2:9200"},
			"proxy_url": "http://proxyuser:proxypass@proxy.example.com:3128",
		}},
		"setup": map[string]any{"kibana": map[string]any{"proxy_auth": "u:p"}},
	}
	redactConfig(cfg)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	for _, secret := range []string{"changeme", "k1", "t1", "secret", "proxypass", "proxyuser", "u:p"} {
		require.NotContains(t, string(out), secret)
	}
	es := cfg["output"].(map[string]any)["elasticsearch"].(map[string]any)
	require.Equal(t, []any{"https://[redacted]@es.example.com:9200", "https://es2:9200"}, es["hosts"])
	require.Equal(t, "http://[redacted]@proxy.example.com:3128", es["proxy_url"])
	require.Equal(t, "deployment:abc", cfg["cloud"].(map[string]any)["id"], "not a secret")
	require.Equal(t, "https://receiver:9880/teleport", cfg["output"].(map[string]any)["http"].(map[string]any)["url"])
}
