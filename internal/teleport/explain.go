package teleport

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gravitational/trace"
)

// Connection errors from teleport/api are walls: "all connection methods
// failed" with one sub-error per method (Auth Service, proxy, tunnel, TLS
// routing), the cause buried in gRPC's wording. Explain turns one into a
// line that says what failed and what to do; the whole error goes to the
// debug log.

// Explained is a connection error with its one-line explanation.
type Explained struct {
	Summary string // what failed and what to do
	Err     error  // the whole error
}

func (e *Explained) Error() string { return e.Summary }
func (e *Explained) Unwrap() error { return e.Err }

// Details is the whole error (for the debug log).
func (e *Explained) Details() string { return e.Err.Error() }

// Explain returns a connection error with a one-line summary for the
// addresses dialed; an error it does not recognise is returned as is.
func Explain(err error, addrs []string) error {
	if err == nil {
		return nil
	}
	var ex *Explained
	if errors.As(err, &ex) {
		return err
	}
	if s := explain(err, addrs); s != "" {
		return &Explained{Summary: s, Err: err}
	}
	return err
}

// ExplainConnect is Explain for the error of a connection attempt: an
// error it does not recognise is summed up by its innermost cause.
func ExplainConnect(err error, addrs []string) error {
	if err == nil {
		return nil
	}
	if e := Explain(err, addrs); e != err {
		return e
	}
	return &Explained{Summary: fmt.Sprintf("cannot connect to Teleport at %s: %s", strings.Join(addrs, ", "), firstLine(lastCause(err.Error()))), Err: err}
}

// Details is the whole error behind an explained one (for the debug log).
func Details(err error) string {
	var ex *Explained
	if errors.As(err, &ex) {
		return ex.Err.Error()
	}
	return err.Error()
}

func explain(err error, addrs []string) string {
	where := strings.Join(addrs, ", ")
	if where == "" {
		where = "Teleport" // the caller does not know the address; dialDetail names it
	}
	msg := err.Error()
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &dnsErr) || strings.Contains(msg, "no such host"):
		host := where
		if dnsErr != nil {
			host = dnsErr.Name
		}
		return fmt.Sprintf("%s: no such host: check teleportbeat.teleport.addr (and this host's DNS)", host)
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		return fmt.Sprintf("connection refused at %s%s: is Teleport's Auth Service or Proxy listening there? (a Proxy is usually host:443 or host:3080, an Auth Service host:3025)", where, dialDetail(msg))
	case errors.As(err, &unknownCA) || strings.Contains(msg, "certificate signed by unknown authority"):
		return fmt.Sprintf("certificate signed by an unknown authority at %s: either the identity is for another Teleport cluster, or the Proxy's web certificate comes from a private CA (set teleportbeat.teleport.proxy_ssl.certificate_authorities to that CA)", where)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired, strings.Contains(msg, "certificate has expired"):
		return fmt.Sprintf("a certificate has expired at %s: renew the identity (tctl auth sign, or Machine ID), or check this host's clock", where)
	case strings.Contains(msg, "bad certificate") || strings.Contains(msg, "certificate required") || strings.Contains(msg, "unknown certificate authority"):
		return fmt.Sprintf("Teleport refused the identity at %s: it is for another cluster, revoked or expired; sign a new one (tctl auth sign) for this cluster", where)
	case trace.IsAccessDenied(err) || strings.Contains(msg, "access denied"):
		return fmt.Sprintf("access denied at %s: %s", where, firstLine(lastCause(msg)))
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "i/o timeout"):
		return fmt.Sprintf("no answer from %s%s within teleportbeat.teleport.dial_timeout: is the address right, and the port open from this host (firewall, proxy)?", where, dialDetail(msg))
	}
	return ""
}

// dialRE finds the dial error gRPC wraps in its message ("dial tcp
// 10.0.0.5:3025: connect: connection refused").
var dialRE = regexp.MustCompile(`dial (tcp|unix)[^"\\]*`)

// dialDetail is " (<the dial error>)", or "" when the message has none.
func dialDetail(msg string) string {
	if m := dialRE.FindString(msg); m != "" {
		return " (" + strings.TrimSpace(m) + ")"
	}
	return ""
}

// lastCause is the innermost part of a chain of "context: cause" messages.
func lastCause(msg string) string {
	parts := strings.Split(msg, ": ")
	for i := len(parts) - 1; i >= 0; i-- {
		if p := strings.TrimSpace(parts[i]); len(p) > 12 {
			return strings.Join(parts[i:], ": ")
		}
	}
	return msg
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// probeTCP dials each address once, quickly: when none accepts a TCP
// connection because each refuses it or its name does not resolve, it
// returns that (explained) at once, instead of waiting the full dial
// timeout in teleport/api's retries. Any other outcome returns nil and
// leaves the verdict to the real connection.
func probeTCP(ctx context.Context, addrs []string, timeout time.Duration) error {
	var errs []error
	for _, a := range addrs {
		d := net.Dialer{Timeout: min(timeout, 5*time.Second)}
		c, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			c.Close()
			return nil
		}
		var dnsErr *net.DNSError
		if !errors.Is(err, syscall.ECONNREFUSED) && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return Explain(errors.Join(errs...), addrs)
}
