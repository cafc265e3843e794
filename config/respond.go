package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	conf "github.com/elastic/elastic-agent-libs/config"
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
	// KibanaConnector is how Kibana reaches the endpoint: `teleportbeat
	// setup` makes the Webhook connector of the detection rules' ready
	// actions from it. Read by setup only.
	KibanaConnector KibanaConnector `config:"kibana_connector"`
}

// KibanaConnector is the endpoint as Kibana reaches it: its URL, Kibana's
// client certificate and key (signed by one of ssl.certificate_authorities
// above), and the CA of the endpoint's certificate (none: Kibana's own
// trust).
type KibanaConnector struct {
	URL string `config:"url"`
	SSL struct {
		Certificate            string   `config:"certificate"`
		Key                    string   `config:"key"`
		CertificateAuthorities []string `config:"certificate_authorities"`
	} `config:"ssl"`
}

// KibanaConnectorKey is its place in the configuration.
const KibanaConnectorKey = "respond.kibana_connector"

// LoadKibanaConnector reads teleportbeat.respond.kibana_connector from
// the teleportbeat section, checked; nil when it has no url. Setup reads
// it alone: loading rules needs nothing else of the section.
func LoadKibanaConnector(section *conf.C) (*KibanaConnector, error) {
	if section == nil || !section.HasField("respond") {
		return nil, nil
	}
	var r struct {
		K KibanaConnector `config:"kibana_connector"`
	}
	sub, err := section.Child("respond", -1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key("respond"), err)
	}
	if err := sub.Unpack(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", key(KibanaConnectorKey), err)
	}
	var problems []error
	r.K.check(func(k, f string, a ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", key(k), fmt.Sprintf(f, a...)))
	})
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if r.K.URL == "" {
		return nil, nil
	}
	return &r.K, nil
}

func (k *KibanaConnector) check(add adder) {
	if k.URL == "" {
		if k.SSL.Certificate != "" || k.SSL.Key != "" {
			add(KibanaConnectorKey+".url", "is required with its ssl settings: the endpoint's URL as Kibana reaches it (https://host:port/v1/lock)")
		}
		return
	}
	if u, err := url.Parse(k.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		add(KibanaConnectorKey+".url", "%q is not an https URL (https://host:port/v1/lock): the endpoint is HTTPS only", k.URL)
	}
	for name, v := range map[string]string{".ssl.certificate": k.SSL.Certificate, ".ssl.key": k.SSL.Key} {
		if v == "" {
			add(KibanaConnectorKey+name, "is required with %s.url: Kibana's client certificate and key, signed by one of respond.ssl.certificate_authorities", KibanaConnectorKey)
		} else if _, err := os.Stat(v); err != nil {
			add(KibanaConnectorKey+name, "%v", err)
		}
	}
	for _, ca := range k.SSL.CertificateAuthorities {
		if _, err := ReadCA(ca); err != nil {
			add(KibanaConnectorKey+".ssl.certificate_authorities", "%v", err)
		}
	}
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
	r.KibanaConnector.check(add)
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
