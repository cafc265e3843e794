package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	conf "github.com/elastic/elastic-agent-libs/config"
)

// TestTheKibanaConnectorIsCheckedByKey: setup reads
// respond.kibana_connector alone; a bad one is refused naming its key,
// by setup and by the beat's own check alike.
func TestTheKibanaConnectorIsCheckedByKey(t *testing.T) {
	c := writeCreds(t)
	section := func(kc map[string]any) *conf.C {
		cfg, err := conf.NewConfigFrom(map[string]any{
			"teleport": map[string]any{"addr": "teleport.example.com:443", "identity_file": c.identity},
			"respond":  map[string]any{"kibana_connector": kc},
		})
		require.NoError(t, err)
		return cfg
	}
	kc, err := LoadKibanaConnector(conf.NewConfig())
	require.NoError(t, err)
	require.Nil(t, kc, "none configured")

	good := map[string]any{"url": "https://tb.example.com:8443/v1/lock", "ssl": map[string]any{"certificate": c.cert, "key": c.key, "certificate_authorities": []string{c.ca}}}
	kc, err = LoadKibanaConnector(section(good))
	require.NoError(t, err)
	require.Equal(t, "https://tb.example.com:8443/v1/lock", kc.URL)
	require.Equal(t, c.key, kc.SSL.Key)
	_, err = Load(section(good))
	require.NoError(t, err, "the endpoint itself need not be enabled where setup runs")

	for name, tc := range map[string]struct {
		kc   map[string]any
		want string
	}{
		"http":        {map[string]any{"url": "http://tb.example.com/v1/lock", "ssl": good["ssl"]}, `teleportbeat.respond.kibana_connector.url: "http://tb.example.com/v1/lock" is not an https URL`},
		"no key":      {map[string]any{"url": "https://tb.example.com/v1/lock", "ssl": map[string]any{"certificate": c.cert}}, "teleportbeat.respond.kibana_connector.ssl.key: is required"},
		"missing":     {map[string]any{"url": "https://tb.example.com/v1/lock", "ssl": map[string]any{"certificate": "/nonexistent/kibana.crt", "key": c.key}}, "teleportbeat.respond.kibana_connector.ssl.certificate: stat /nonexistent/kibana.crt"},
		"no url":      {map[string]any{"ssl": good["ssl"]}, "teleportbeat.respond.kibana_connector.url: is required with its ssl settings"},
		"unknown key": {map[string]any{"url": "https://tb.example.com/v1/lock", "usr": "x"}, "usr"},
	} {
		_, err := Load(section(tc.kc))
		require.ErrorContains(t, err, tc.want, name)
		if name != "unknown key" {
			_, err = LoadKibanaConnector(section(tc.kc))
			require.ErrorContains(t, err, tc.want, name)
		}
	}
}
