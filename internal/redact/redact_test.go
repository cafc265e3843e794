package redact

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://es.example.com:9200":                   "https://es.example.com:9200",
		"http://user:Pa55@fluentd.example.com:9880/x":   "http://[redacted]@fluentd.example.com:9880/x",
		"https://hooks.example.com/in?token=abc&tag=t1": "https://hooks.example.com/in?tag=[redacted]&token=[redacted]",
		"elastic:Pa55@es.example.com:9200":              "[redacted]@es.example.com:9200",
		"es.example.com:9200":                           "es.example.com:9200",
		"alice@example.com":                             "[redacted]@example.com",
		"a plain sentence, not a URL":                   "a plain sentence, not a URL",
	} {
		require.Equal(t, want, URL(in), in)
	}
}

// Every secret-bearing setting of libbeat's outputs (Elasticsearch,
// Logstash, Kafka, Redis, the HTTP output), of Kibana and of monitoring is
// hidden; what is not a secret stays readable.
func TestConfig(t *testing.T) {
	cfg := map[string]any{
		"output": map[string]any{"elasticsearch": map[string]any{
			"hosts":      []any{"https://elastic:EsPa55@es:9200", "user:Pa55@es2:9200"},
			"username":   "elastic",
			"password":   "EsPa55",
			"api_key":    "id:ApiK3y",
			"headers":    map[string]any{"X-Custom": "HeaderSekrit"},
			"parameters": map[string]any{"token": "ParamSekrit"},
			"proxy_url":  "http://proxy:Pr0xy@proxy:3128",
			"ssl":        map[string]any{"key_passphrase": "Phr4se", "key": "/etc/es.key", "certificate": "/etc/es.crt"},
			"index":      "teleportbeat",
		}},
		"setup":  map[string]any{"kibana": map[string]any{"service_token": "SvcT0ken", "host": "https://kb:5601"}},
		"cloud":  map[string]any{"auth": "elastic:CloudPa55", "id": "deployment:abc"},
		"x":      map[string]any{"access_token": "AccT0k", "sasl": map[string]any{"mechanism": "PLAIN"}, "kafka_password": "K"},
		"inline": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
	}
	Config(cfg)
	es := cfg["output"].(map[string]any)["elasticsearch"].(map[string]any)
	require.Equal(t, []any{"https://[redacted]@es:9200", "[redacted]@es2:9200"}, es["hosts"])
	for _, k := range []string{"password", "api_key"} {
		require.Equal(t, Mask, es[k], k)
	}
	require.Equal(t, "elastic", es["username"])
	require.Equal(t, "teleportbeat", es["index"])
	require.Equal(t, Mask, es["headers"].(map[string]any)["X-Custom"])
	require.Equal(t, Mask, es["parameters"].(map[string]any)["token"])
	require.Equal(t, "http://[redacted]@proxy:3128", es["proxy_url"])
	ssl := es["ssl"].(map[string]any)
	require.Equal(t, Mask, ssl["key_passphrase"])
	require.Equal(t, "/etc/es.crt", ssl["certificate"])
	require.Equal(t, Mask, cfg["setup"].(map[string]any)["kibana"].(map[string]any)["service_token"])
	require.Equal(t, "https://kb:5601", cfg["setup"].(map[string]any)["kibana"].(map[string]any)["host"])
	require.Equal(t, Mask, cfg["cloud"].(map[string]any)["auth"])
	require.Equal(t, Mask, cfg["x"].(map[string]any)["access_token"])
	require.Equal(t, Mask, cfg["x"].(map[string]any)["kafka_password"])
	require.Equal(t, "PLAIN", cfg["x"].(map[string]any)["sasl"].(map[string]any)["mechanism"])
	require.Equal(t, Mask, cfg["inline"])
}
