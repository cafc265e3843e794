package cmd

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/config"
)

// The rules reach Kibana with the credentials the dashboards use:
// setup.kibana's, else output.elasticsearch's.
func TestKibanaConfigFallsBackToTheOutputsCredentials(t *testing.T) {
	cfg := config.MustNewConfigFrom(map[string]any{
		"setup.kibana.host":             "https://kibana:5601",
		"output.elasticsearch.username": "elastic",
		"output.elasticsearch.password": "secret",
		"output.elasticsearch.api_key":  "id:key",
		"output.elasticsearch.hosts":    []string{"es:9200"},
	})
	k, err := kibanaConfig(cfg)
	require.NoError(t, err)
	for key, want := range map[string]string{"host": "https://kibana:5601", "username": "elastic", "password": "secret", "api_key": "id:key"} {
		got, err := k.String(key, -1)
		require.NoError(t, err, key)
		require.Equal(t, want, got, key)
	}

	cfg = config.MustNewConfigFrom(map[string]any{
		"setup.kibana.username":         "kibana-admin",
		"output.elasticsearch.username": "elastic",
	})
	k, err = kibanaConfig(cfg)
	require.NoError(t, err)
	got, _ := k.String("username", -1)
	require.Equal(t, "kibana-admin", got, "setup.kibana's own wins")

	cfg = config.MustNewConfigFrom(map[string]any{"output.logstash.hosts": []string{"ls:5044"}})
	k, err = kibanaConfig(cfg)
	require.NoError(t, err)
	require.False(t, k.HasField("username"))
}
