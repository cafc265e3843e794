// Package teleporttest is a Teleport test double: a gRPC server that
// implements the parts of Teleport's real AuthService and AuditLogService
// (from github.com/gravitational/teleport/api) that teleportbeat uses, over
// mutual TLS with certificates it issues itself, the way a Teleport Auth
// Service does. It serves the sample audit events shipped with the
// repository and generated events in volume, pages exactly like Teleport
// (opaque start keys, limits, order, time windows, type filters, a response
// size cap) and can inject latency, errors, disconnects and credential
// problems.
package teleporttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gravitational/teleport/api/constants"
	"github.com/gravitational/teleport/api/identityfile"
)

// PKI is the certificate authority of a test cluster. Like a Teleport Auth
// Service it has a TLS CA (for the gRPC API) and an SSH user CA (identity
// files carry an SSH certificate too; teleport/api refuses identity files
// without one).
type PKI struct {
	ClusterName string

	mu        sync.Mutex
	caKey     *ecdsa.PrivateKey
	caCert    *x509.Certificate
	caPEM     []byte
	sshSigner ssh.Signer
	serial    int64
}

// NewPKI creates a fresh CA for the named cluster.
func NewPKI(clusterName string) (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: clusterName, Organization: []string{clusterName}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	sshKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate SSH CA key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(sshKey)
	if err != nil {
		return nil, fmt.Errorf("SSH CA signer: %w", err)
	}
	return &PKI{
		ClusterName: clusterName,
		caKey:       key,
		caCert:      cert,
		caPEM:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		sshSigner:   signer,
		serial:      1,
	}, nil
}

// CAPEM returns the TLS CA certificate in PEM form.
func (p *PKI) CAPEM() []byte { return p.caPEM }

// CAPool returns a pool holding the TLS CA.
func (p *PKI) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return pool
}

func (p *PKI) nextSerial() *big.Int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	return big.NewInt(p.serial)
}

func (p *PKI) lastSerial() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serial
}

// ServerCertificate issues the certificate the Auth Service presents. Like
// Teleport's, it names teleport.cluster.local (the name teleport/api puts in
// SNI and verifies) besides the given hosts.
func (p *PKI) ServerCertificate(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject:      pkix.Name{CommonName: "auth", Organization: []string{"Auth"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{constants.APIDomain, "*." + constants.APIDomain},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Identity is a client identity issued by the test cluster: what
// `tctl auth sign` produces.
type Identity struct {
	User     string
	Roles    []string
	NotAfter time.Time

	KeyPEM  []byte // PKCS#8 private key
	CertPEM []byte // TLS client certificate
	CAPEM   []byte // TLS CA
	SSHCert []byte // SSH user certificate, authorized_keys format
	SSHCA   []byte // known_hosts line for the SSH CA
}

// IssueIdentity issues a client identity for user with roles, valid for ttl
// (a negative ttl yields an already expired identity).
func (p *PKI) IssueIdentity(user string, roles []string, ttl time.Duration) (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	now := time.Now()
	notBefore := now.Add(-time.Minute)
	notAfter := now.Add(ttl)
	if ttl < 0 {
		notBefore = notAfter.Add(-time.Hour)
	}
	// Teleport encodes the user as the subject's common name and the roles
	// as its organizations (lib/tlsca.Identity).
	tmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject:      pkix.Name{CommonName: user, Organization: roles},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("sign client certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal client key: %w", err)
	}
	sshCert, err := p.sshUserCert(key, user, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	caPub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p.sshSigner.PublicKey())))
	caLine := fmt.Sprintf("@cert-authority %s,*.%s %s type=user\n", p.ClusterName, p.ClusterName, caPub)
	return &Identity{
		User:     user,
		Roles:    roles,
		NotAfter: notAfter,
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		CAPEM:    p.caPEM,
		SSHCert:  ssh.MarshalAuthorizedKey(sshCert),
		SSHCA:    []byte(caLine),
	}, nil
}

func (p *PKI) sshUserCert(key crypto.Signer, user string, notBefore, notAfter time.Time) (*ssh.Certificate, error) {
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("ssh public key: %w", err)
	}
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          uint64(p.nextSerial().Int64()),
		CertType:        ssh.UserCert,
		KeyId:           user,
		ValidPrincipals: []string{user, "-teleport-internal-join"},
		ValidAfter:      uint64(notBefore.Unix()),
		ValidBefore:     uint64(notAfter.Unix()),
	}
	if err := cert.SignCert(rand.Reader, p.sshSigner); err != nil {
		return nil, fmt.Errorf("sign SSH certificate: %w", err)
	}
	return cert, nil
}

// IdentityFileBytes encodes the identity in the identity file format of
// `tctl auth sign --format=file` (and Machine ID's identity output).
func (id *Identity) IdentityFileBytes() ([]byte, error) {
	b, err := identityfile.Encode(&identityfile.IdentityFile{
		PrivateKey: id.KeyPEM,
		Certs:      identityfile.Certs{SSH: id.SSHCert, TLS: id.CertPEM},
		CACerts:    identityfile.CACerts{SSH: [][]byte{id.SSHCA}, TLS: [][]byte{id.CAPEM}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode identity file: %w", err)
	}
	return b, nil
}

// WriteIdentityFile writes the identity file to path, atomically (write and
// rename, as tbot does) and with mode 0600.
func (id *Identity) WriteIdentityFile(path string) error {
	b, err := id.IdentityFileBytes()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

// KeyPairFiles are the paths written by WriteKeyPair.
type KeyPairFiles struct {
	Cert, Key, CA string
}

// WriteKeyPair writes the identity as `tctl auth sign --format=tls` does:
// <prefix>.crt, <prefix>.key and <prefix>.cas.
func (id *Identity) WriteKeyPair(prefix string) (KeyPairFiles, error) {
	f := KeyPairFiles{Cert: prefix + ".crt", Key: prefix + ".key", CA: prefix + ".cas"}
	for _, w := range []struct {
		path string
		data []byte
	}{{f.Cert, id.CertPEM}, {f.Key, id.KeyPEM}, {f.CA, id.CAPEM}} {
		if err := writeFileAtomic(w.path, w.data, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}
