package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIssuedCertificatesChainAndHandshake(t *testing.T) {
	for _, typ := range []KeyType{ECDSA, RSA} {
		t.Run(string(typ), func(t *testing.T) {
			ca, err := NewCA("test CA", Options{Type: typ, RSABits: 2048})
			require.NoError(t, err)
			srv, err := ca.Server("logstash", "localhost", "127.0.0.1")
			require.NoError(t, err)
			cli, err := ca.Client("teleportbeat")
			require.NoError(t, err)

			block, _ := pem.Decode(srv.KeyPEM)
			require.Equal(t, "PRIVATE KEY", block.Type, "PKCS#8, as Logstash wants")
			_, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			require.NoError(t, err)

			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			_, err = srv.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"})
			require.NoError(t, err)
			_, err = cli.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			require.NoError(t, err)
			_, err = tls.X509KeyPair(cli.CertPEM, cli.KeyPEM)
			require.NoError(t, err)

			dir := t.TempDir()
			_, keyPath, err := cli.Write(dir, "client")
			require.NoError(t, err)
			fi, err := os.Stat(keyPath)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		})
	}
}
