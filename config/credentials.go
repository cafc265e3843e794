package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/gravitational/teleport/api/identityfile"
	"github.com/gravitational/teleport/api/utils/keys"
)

// validateCredentials checks that exactly one kind of credential is set
// and that its files can be read and parsed, so that a typo or a missing
// file stops the beat at start instead of at the first connection.
func validateCredentials(t *Teleport) []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key(path), fmt.Sprintf(format, args...)))
	}
	ssl := t.SSL
	hasKeyPair := ssl.Certificate != "" || ssl.Key != "" || len(ssl.CertificateAuthorities) > 0
	switch {
	case t.IdentityFile != "" && hasKeyPair:
		add("teleport.identity_file", "set either an identity file or teleportbeat.teleport.ssl (certificate, key, certificate_authorities), not both")
		return errs
	case t.IdentityFile == "" && !hasKeyPair:
		add("teleport", "missing credentials: set teleportbeat.teleport.identity_file (from `tctl auth sign --format=file` or Machine ID), or teleportbeat.teleport.ssl.certificate, .key and .certificate_authorities (from `tctl auth sign --format=tls`)")
		return errs
	case t.IdentityFile != "":
		if err := checkIdentityFile(t.IdentityFile); err != nil {
			add("teleport.identity_file", "%v", err)
		}
		return errs
	}

	if ssl.Certificate == "" {
		add("teleport.ssl.certificate", "is required with teleportbeat.teleport.ssl.key: the client certificate file")
	}
	if ssl.Key == "" {
		add("teleport.ssl.key", "is required with teleportbeat.teleport.ssl.certificate: the client private key file")
	}
	if len(ssl.CertificateAuthorities) == 0 {
		add("teleport.ssl.certificate_authorities", "is required: the Teleport cluster's CA file (the .cas file of `tctl auth sign --format=tls`)")
	}
	var certPEM, keyPEM []byte
	if ssl.Certificate != "" {
		b, err := readPEMFile(ssl.Certificate)
		if err != nil {
			add("teleport.ssl.certificate", "%v", err)
		}
		certPEM = b
	}
	if ssl.Key != "" {
		b, err := readPEMFile(ssl.Key)
		if err != nil {
			add("teleport.ssl.key", "%v", err)
		}
		keyPEM = b
	}
	if certPEM != nil && keyPEM != nil {
		if _, err := keys.X509KeyPair(certPEM, keyPEM); err != nil {
			add("teleport.ssl.key", "does not match teleportbeat.teleport.ssl.certificate (%s, %s): %v", ssl.Key, ssl.Certificate, err)
		}
	}
	for i, ca := range ssl.CertificateAuthorities {
		b, err := readPEMFile(ca)
		if err != nil {
			add(fmt.Sprintf("teleport.ssl.certificate_authorities.%d", i), "%v", err)
			continue
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			add(fmt.Sprintf("teleport.ssl.certificate_authorities.%d", i), "%s holds no PEM certificate", ca)
		}
	}
	return errs
}

func readPEMFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if block, _ := pem.Decode(b); block == nil {
		return nil, fmt.Errorf("%s is not a PEM file", path)
	}
	return b, nil
}

func checkIdentityFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	id, err := identityfile.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read identity file %s: %w", path, err)
	}
	switch {
	case len(id.PrivateKey) == 0:
		return fmt.Errorf("%s is not an identity file: it holds no private key", path)
	case len(id.Certs.TLS) == 0:
		return fmt.Errorf("%s is not an identity file: it holds no TLS certificate", path)
	case len(id.Certs.SSH) == 0:
		return fmt.Errorf("%s holds no SSH certificate; teleport/api needs one (sign it with `tctl auth sign --format=file`)", path)
	case len(id.CACerts.TLS) == 0:
		return fmt.Errorf("%s holds no TLS CA certificate", path)
	}
	if _, err := keys.X509KeyPair(id.Certs.TLS, id.PrivateKey); err != nil {
		return fmt.Errorf("identity file %s: the TLS certificate and private key do not form a pair: %w", path, err)
	}
	return nil
}
