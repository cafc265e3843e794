// Package certs issues the X.509 material of a private mutual-TLS setup: a
// CA, server certificates and client certificates, with private keys in
// the unencrypted PKCS#8 PEM form that Logstash's beats and http inputs
// accept. `teleportbeat configure` writes it for the Logstash side; tests
// use it for their own TLS peers.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyType selects the key algorithm.
type KeyType string

// Key algorithms.
const (
	RSA   KeyType = "rsa"
	ECDSA KeyType = "ecdsa"
)

// Options control issued keys.
type Options struct {
	Type    KeyType       // default ECDSA
	RSABits int           // default 4096
	TTL     time.Duration // default 10 years
}

func (o Options) withDefaults() Options {
	if o.Type == "" {
		o.Type = ECDSA
	}
	if o.RSABits == 0 {
		o.RSABits = 4096
	}
	if o.TTL == 0 {
		o.TTL = 10 * 365 * 24 * time.Hour
	}
	return o
}

// Pair is a certificate with its private key, in PEM.
type Pair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte // PKCS#8 ("PRIVATE KEY")
}

// CA is a certificate authority.
type CA struct {
	Pair
	opts Options
}

func newKey(o Options) (crypto.Signer, error) {
	switch o.Type {
	case RSA:
		return rsa.GenerateKey(rand.Reader, o.RSABits)
	case ECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key type %q (want rsa or ecdsa)", o.Type)
	}
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encode(der []byte, key crypto.Signer) (Pair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
	}, nil
}

// NewCA creates a self-signed CA named cn.
func NewCA(cn string, o Options) (*CA, error) {
	o = o.withDefaults()
	key, err := newKey(o)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.TTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	p, err := encode(der, key)
	if err != nil {
		return nil, err
	}
	return &CA{Pair: p, opts: o}, nil
}

// Server issues a server certificate for hosts (DNS names or IPs).
func (ca *CA) Server(cn string, hosts ...string) (Pair, error) {
	return ca.issue(cn, x509.ExtKeyUsageServerAuth, hosts)
}

// Client issues a client certificate.
func (ca *CA) Client(cn string) (Pair, error) {
	return ca.issue(cn, x509.ExtKeyUsageClientAuth, nil)
}

func (ca *CA) issue(cn string, usage x509.ExtKeyUsage, hosts []string) (Pair, error) {
	key, err := newKey(ca.opts)
	if err != nil {
		return Pair{}, fmt.Errorf("generate key for %s: %w", cn, err)
	}
	sn, err := serial()
	if err != nil {
		return Pair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ca.opts.TTL),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Pair{}, fmt.Errorf("sign certificate for %s: %w", cn, err)
	}
	return encode(der, key)
}

// Write writes the pair as <dir>/<name>.crt and <dir>/<name>.key; the key
// is created with mode 0600.
func (p Pair) Write(dir, name string) (certPath, keyPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, p.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, p.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}
