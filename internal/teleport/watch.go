package teleport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
)

// ExpiryWarning is how long before expiry a credential is reported as
// about to expire.
const ExpiryWarning = time.Hour

// LogExpiry says when the credentials expire, as a warning when that is
// soon and an error when it is past.
func LogExpiry(log *logp.Logger, creds Credentials, now time.Time) {
	exp, ok := creds.Expiry()
	if !ok {
		return
	}
	fields := []any{"expires", exp.UTC().Format(time.RFC3339), "files", creds.Files()}
	switch left := exp.Sub(now); {
	case left <= 0:
		log.Errorw("Teleport credentials have expired: Teleport will refuse them until they are renewed (tctl auth sign, or Machine ID's tbot)", fields...)
	case left < ExpiryWarning:
		log.Warnw("Teleport credentials expire soon: renew them (tbot renews identity files on its own)", append(fields, "in", left.Round(time.Second).String())...)
	default:
		log.Infow("Teleport credentials valid", append(fields, "in", left.Round(time.Minute).String())...)
	}
}

// WatchCredentials re-reads the credential files when they change on disk
// (Machine ID's tbot rewrites its identity file every ~20 minutes) and
// calls renewed after a successful reload, so that the connection is
// re-established with the new certificate. A file caught half-written
// fails to load and is tried again at the next check.
func WatchCredentials(ctx context.Context, log *logp.Logger, creds Credentials, interval time.Duration, renewed func()) {
	if interval <= 0 {
		return
	}
	last := fingerprint(creds.Files())
	t := time.NewTicker(interval)
	defer t.Stop()
	lastExpiryLog := time.Now()
	exp, ok := creds.Expiry()
	reportedExpired := ok && !lastExpiryLog.Before(exp) // LogExpiry said so at start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fp := fingerprint(creds.Files())
			if bytes.Equal(fp, last) {
				// Say at once when the credentials expire while running
				// (every call fails from then on), and remind, at most
				// every 10 minutes, of credentials that expire soon or
				// have expired.
				if exp, ok := creds.Expiry(); ok {
					expired := !now.Before(exp)
					if (expired && !reportedExpired) || (exp.Sub(now) < ExpiryWarning && now.Sub(lastExpiryLog) >= 10*time.Minute) {
						LogExpiry(log, creds, now)
						lastExpiryLog = now
					}
					reportedExpired = expired
				}
				continue
			}
			if err := creds.Reload(); err != nil {
				log.Warnw("Teleport credential files changed but cannot be loaded yet; keeping the current ones", "files", creds.Files(), "error", err)
				continue
			}
			last = fp
			log.Infow("Teleport credentials renewed on disk; reconnecting with them", "files", creds.Files())
			LogExpiry(log, creds, now)
			lastExpiryLog = now
			exp, ok := creds.Expiry()
			reportedExpired = ok && !now.Before(exp)
			renewed()
		}
	}
}

// fingerprint hashes the files' contents (a missing file hashes as empty).
func fingerprint(files []string) []byte {
	h := sha256.New()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}
