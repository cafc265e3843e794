package cmd

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	conf "github.com/elastic/elastic-agent-libs/config"

	"github.com/teleportbeat/teleportbeat/config"
)

// teleport/api verifies the Proxy's web certificate (its /webapi/find
// discovery, and the TLS-routing dial) against the system roots only: no
// setting of its client reaches them. A Proxy with a certificate from a
// private CA is trusted by adding that CA to the roots Go loads, through
// SSL_CERT_DIR, before anything in the process uses TLS: its files are
// copied into a private directory, which is added to the directories Go
// reads (the system's own stay).

// privateDir creates dir, or accepts it, only as a directory of this user
// that no one else may write to (a shared /tmp could hold one planted by
// another user, with another CA in it).
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s exists and is not a private directory of this user; remove it", dir)
	}
	return nil
}

// defaultCertDirs are the directories Go reads system roots from on Linux
// when SSL_CERT_DIR is unset (crypto/x509's certDirectories).
var defaultCertDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}

// trustProxyCAs adds the CA files of teleportbeat.teleport.proxy_ssl to the
// system roots of this process. It returns a function that removes the
// copies.
func trustProxyCAs(cfg *conf.C) (func(), error) {
	none := func() {}
	var c struct {
		Teleport struct {
			ProxySSL struct {
				CertificateAuthorities []string `config:"certificate_authorities"`
			} `config:"proxy_ssl"`
		} `config:"teleportbeat.teleport"`
	}
	if cfg == nil || cfg.Unpack(&c) != nil || len(c.Teleport.ProxySSL.CertificateAuthorities) == 0 {
		return none, nil // config errors are the beat's to report
	}
	var pems [][]byte
	h := sha256.New()
	for i, f := range c.Teleport.ProxySSL.CertificateAuthorities {
		b, err := config.ReadCA(f)
		if err != nil {
			return none, fmt.Errorf("teleportbeat.teleport.proxy_ssl.certificate_authorities.%d: %w", i, err)
		}
		pems = append(pems, b)
		h.Write(b)
	}
	// One directory per user and set of CAs, reused across starts.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("teleportbeat-proxy-ca-%d-%x", os.Getuid(), h.Sum(nil)[:8]))
	if err := privateDir(dir); err != nil {
		return none, fmt.Errorf("teleportbeat.teleport.proxy_ssl.certificate_authorities: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	for i, b := range pems {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("proxy-ca-%d.pem", i)), b, 0o600); err != nil {
			return none, err
		}
	}
	dirs := defaultCertDirs
	if cur := os.Getenv("SSL_CERT_DIR"); cur != "" {
		dirs = strings.Split(cur, ":")
	}
	if err := os.Setenv("SSL_CERT_DIR", strings.Join(append(dirs, dir), ":")); err != nil {
		cleanup()
		return none, err
	}
	return cleanup, nil
}
