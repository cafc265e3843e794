package config

import (
	"net"
	"os"
	"time"
)

// Respond configures the response endpoint (internal/respond): HTTPS with
// mutual TLS, where a Kibana rule action asks for a Teleport lock. Off by
// default, with no default address.
type Respond struct {
	Enabled bool `config:"enabled"`
	// Listen is the address to listen on, host:port (required).
	Listen string `config:"listen"`
	// SSL is the endpoint's certificate and key, and the CAs its clients'
	// certificates must chain to (all required).
	SSL struct {
		Certificate            string   `config:"certificate"`
		Key                    string   `config:"key"`
		CertificateAuthorities []string `config:"certificate_authorities"`
	} `config:"ssl"`
	// NeverLock are users and roles never locked (break-glass accounts);
	// teleportbeat's own user is never locked either.
	NeverLock struct {
		Users []string `config:"users"`
		Roles []string `config:"roles"`
	} `config:"never_lock"`
	// TTL bounds the lock a request asks for.
	TTL struct {
		Min time.Duration `config:"min"`
		Max time.Duration `config:"max"`
	} `config:"ttl"`
	// MaxBodyBytes bounds a request's body.
	MaxBodyBytes int `config:"max_body_bytes"`
	// Timeout bounds the wait for Teleport to create a lock; the request
	// is then answered with the error.
	Timeout time.Duration `config:"timeout"`
}

// defaultRespond are the endpoint's defaults (off).
func defaultRespond() Respond {
	var r Respond
	r.TTL.Min, r.TTL.Max = time.Minute, 24*time.Hour
	r.MaxBodyBytes = 64 << 10
	r.Timeout = 10 * time.Second
	return r
}

func (c *Config) checkRespond(add adder) {
	r := &c.Respond
	if !r.Enabled {
		return
	}
	if r.Listen == "" {
		add("respond.listen", "is required with respond.enabled: the address (host:port) to listen on; there is no default")
	} else if _, _, err := net.SplitHostPort(r.Listen); err != nil {
		add("respond.listen", "%q is not host:port: %v", r.Listen, err)
	}
	for k, v := range map[string]string{"respond.ssl.certificate": r.SSL.Certificate, "respond.ssl.key": r.SSL.Key} {
		if v == "" {
			add(k, "is required with respond.enabled: the endpoint is HTTPS with mutual TLS only")
		} else if _, err := os.Stat(v); err != nil {
			add(k, "%v", err)
		}
	}
	if len(r.SSL.CertificateAuthorities) == 0 {
		add("respond.ssl.certificate_authorities", "is required with respond.enabled: the CAs of the clients' certificates (only clients they signed may ask for locks)")
	}
	for _, ca := range r.SSL.CertificateAuthorities {
		if _, err := ReadCA(ca); err != nil {
			add("respond.ssl.certificate_authorities", "%v", err)
		}
	}
	if r.TTL.Min <= 0 || r.TTL.Max < r.TTL.Min {
		add("respond.ttl", "min must be positive and max at least min, got %s and %s", r.TTL.Min, r.TTL.Max)
	}
	if r.Timeout <= 0 {
		add("respond.timeout", "must be positive, got %s", r.Timeout)
	}
	if r.MaxBodyBytes < 256 {
		add("respond.max_body_bytes", "must be at least 256, got %d", r.MaxBodyBytes)
	}
}
