package cmd

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	conf "github.com/elastic/elastic-agent-libs/config"

	"github.com/gravitational/teleport/api/client/webclient"
)

// TestProxyCAIsTrustedForTeleportsDiscovery: a Proxy whose web certificate
// comes from a private CA is refused by teleport/api's discovery
// (webclient.Find, which verifies against the system roots only), unless
// teleportbeat.teleport.proxy_ssl.certificate_authorities names the CA.
// Each attempt runs in a fresh process: Go loads the system roots once.
func TestProxyCAIsTrustedForTeleportsDiscovery(t *testing.T) {
	if os.Getenv("TB_PROXYCA_CHILD") != "" {
		return // the child's work is in TestProxyCAChild
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"proxy":{"tls_routing_enabled":true},"server_version":"18.0.0"}`)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "proxy-ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	child := func(ca string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProxyCAChild$", "-test.v")
		cmd.Env = append(os.Environ(), "TB_PROXYCA_CHILD=1", "TB_PROXY_ADDR="+strings.TrimPrefix(srv.URL, "https://"), "TB_PROXY_CA="+ca)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := child("")
	require.Error(t, err, out)
	require.Contains(t, out, "certificate signed by unknown authority", "without the setting the Proxy is not trusted")
	out, err = child(caFile)
	require.NoError(t, err, out)
	require.Contains(t, out, "found proxy, TLS routing true")
}

func TestProxyCAChild(t *testing.T) {
	if os.Getenv("TB_PROXYCA_CHILD") == "" {
		t.Skip("run by TestProxyCAIsTrustedForTeleportsDiscovery")
	}
	if ca := os.Getenv("TB_PROXY_CA"); ca != "" {
		cfg := conf.MustNewConfigFrom(map[string]any{"teleportbeat.teleport.proxy_ssl.certificate_authorities": []string{ca}})
		cleanup, err := trustProxyCAs(cfg)
		require.NoError(t, err)
		defer cleanup()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := webclient.Find(&webclient.Config{Context: ctx, ProxyAddr: os.Getenv("TB_PROXY_ADDR")})
	require.NoError(t, err)
	fmt.Printf("found proxy, TLS routing %v\n", resp.Proxy.TLSRoutingEnabled)
}
