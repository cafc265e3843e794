package cmd

import (
	"testing"

	"github.com/stretchr/testify/require"
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
	redact(cfg)
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
