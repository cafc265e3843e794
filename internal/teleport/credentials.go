// Package teleport reads from a Teleport cluster through teleport/api:
// credentials that follow renewals on disk, the connection, and the audit
// log reader.
package teleport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/gravitational/trace"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/http2"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/constants"
	"github.com/gravitational/teleport/api/utils/keys"

	"github.com/teleportbeat/teleportbeat/config"
)

// Credentials are teleport/api credentials that can re-read their files.
type Credentials interface {
	client.Credentials
	// Reload re-reads the credential files; connections made afterwards
	// use the new certificate.
	Reload() error
	// Files lists the files the credentials come from.
	Files() []string
}

// NewCredentials builds the credentials the configuration names.
func NewCredentials(t config.Teleport) (Credentials, error) {
	if t.IdentityFile != "" {
		d, err := client.NewDynamicIdentityFileCreds(t.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("teleportbeat.teleport.identity_file: load %s: %w", t.IdentityFile, err)
		}
		return &identityFileCreds{DynamicIdentityFileCreds: d}, nil
	}
	k := &keyPairCreds{certFile: t.SSL.Certificate, keyFile: t.SSL.Key, caFiles: t.SSL.CertificateAuthorities}
	if err := k.Reload(); err != nil {
		return nil, fmt.Errorf("teleportbeat.teleport.ssl: %w", err)
	}
	return k, nil
}

// identityFileCreds is teleport/api's renewable identity file credential,
// the one it recommends for Machine ID.
type identityFileCreds struct {
	*client.DynamicIdentityFileCreds
}

func (c *identityFileCreds) Reload() error {
	if err := c.DynamicIdentityFileCreds.Reload(); err != nil {
		return fmt.Errorf("reload identity file %s: %w", c.Path, err)
	}
	return nil
}

func (c *identityFileCreds) Files() []string { return []string{c.Path} }

// keyPairCreds is a TLS key pair and CA on disk (`tctl auth sign
// --format=tls`). Unlike teleport/api's LoadKeyPair it can be reloaded
// without a new connection: the certificate is picked at every handshake.
type keyPairCreds struct {
	certFile, keyFile string
	caFiles           []string

	mu   sync.RWMutex
	cert *tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
}

func (k *keyPairCreds) Files() []string {
	return append([]string{k.certFile, k.keyFile}, k.caFiles...)
}

func (k *keyPairCreds) Reload() error {
	cert, err := keys.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("load key pair %s, %s: %w", k.certFile, k.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("parse %s: %w", k.certFile, err)
	}
	pool := x509.NewCertPool()
	for _, f := range k.caFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read CA %s: %w", f, err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("CA file %s holds no PEM certificate", f)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cert, k.leaf, k.pool = &cert, leaf, pool
	return nil
}

// TLSConfig follows teleport/api's DynamicIdentityFileCreds: the client
// certificate and the roots are read at every handshake, and the server
// is verified as teleport.cluster.local, the name on every Teleport Auth
// Service certificate.
func (k *keyPairCreds) TLSConfig() (*tls.Config, error) {
	k.mu.RLock()
	pool := k.pool.Clone()
	k.mu.RUnlock()
	return &tls.Config{
		NextProtos: []string{http2.NextProtoTLS},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			k.mu.RLock()
			defer k.mu.RUnlock()
			return k.cert, nil
		},
		RootCAs: pool,
		// Verification is done by VerifyConnection against the current
		// roots, which may change on reload.
		InsecureSkipVerify: true,
		VerifyConnection: func(state tls.ConnectionState) error {
			k.mu.RLock()
			roots := k.pool
			k.mu.RUnlock()
			if len(state.PeerCertificates) == 0 {
				return fmt.Errorf("teleport: server presented no certificate")
			}
			opts := x509.VerifyOptions{DNSName: state.ServerName, Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range state.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := state.PeerCertificates[0].Verify(opts)
			return err
		},
		ServerName: constants.APIDomain,
		MinVersion: tls.VersionTLS12,
	}, nil
}

func (k *keyPairCreds) SSHClientConfig() (*ssh.ClientConfig, error) {
	return nil, trace.NotImplemented("no ssh config")
}

func (k *keyPairCreds) Expiry() (time.Time, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.leaf == nil {
		return time.Time{}, false
	}
	return k.leaf.NotAfter, true
}

// WarnReadableSecrets warns when a file holding the private key of
// teleportbeat's Teleport identity can be read by users other than its
// owner: whoever reads it can read the cluster's audit log.
func WarnReadableSecrets(log *logp.Logger, t config.Teleport) {
	var secrets []string
	if t.IdentityFile != "" {
		secrets = append(secrets, t.IdentityFile)
	} else if t.SSL.Key != "" {
		secrets = append(secrets, t.SSL.Key)
	}
	for _, f := range secrets {
		fi, err := os.Stat(f)
		if err != nil {
			continue // loading the credentials reports it
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			log.Warnw("The file with teleportbeat's Teleport private key can be read by other users; restrict it to the user teleportbeat runs as (chmod 600)",
				"file", f, "mode", fmt.Sprintf("%#o", perm))
		}
	}
}
