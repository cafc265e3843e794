package input

import (
	"fmt"
	"sync"
	"time"

	"github.com/elastic/beats/v7/libbeat/management/status"
)

// expiring is the part of Teleport credentials health needs.
type expiring interface {
	Expiry() (time.Time, bool)
}

// health turns what the input sees of Teleport into a status with a
// reason, for Elastic Agent (the unit's state in Fleet) or, standalone,
// libbeat's status log:
//   - healthy while searches succeed;
//   - degraded while Teleport cannot be reached or a search fails (the
//     input retries by itself; nothing is lost, events are late);
//   - degraded while the registry cannot be written (reading is held);
//   - failed when the credentials have expired: retrying cannot help until
//     someone renews them (the input keeps retrying and turns healthy
//     again once a renewed identity works).
type health struct {
	rep   status.StatusReporter
	creds expiring
	addr  []string
	now   func() time.Time

	mu       sync.Mutex
	state    status.Status
	msg      string
	registry error // the registry write error while reading is held
}

func newHealth(rep status.StatusReporter, creds expiring, addr []string) *health {
	return &health{rep: rep, creds: creds, addr: addr, now: time.Now, state: status.Unknown}
}

func (h *health) set(s status.Status, msg string) {
	if h.rep == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s == h.state && msg == h.msg {
		return
	}
	h.state, h.msg = s, msg
	h.rep.UpdateStatus(s, msg)
}

// failing reports a Teleport failure: expired credentials, or else the
// error itself under what was being done.
func (h *health) failing(doing string, err error) {
	if exp, ok := h.creds.Expiry(); ok && h.now().After(exp) {
		h.set(status.Failed, fmt.Sprintf("Teleport credentials expired at %s: renew them (tctl auth sign, or Machine ID's tbot); teleportbeat retries until they work", exp.UTC().Format(time.RFC3339)))
		return
	}
	h.set(status.Degraded, fmt.Sprintf("%s: %v (retrying)", doing, err))
}

// misconfigured reports what retrying cannot fix.
func (h *health) misconfigured(err error) { h.set(status.Failed, err.Error()) }

// partly reports a part that does not work while shipping goes on.
func (h *health) partly(err error) { h.set(status.Degraded, err.Error()) }

func (h *health) unreachable(err error) {
	h.failing(fmt.Sprintf("Teleport unreachable at %v", h.addr), err)
}

// registryFailing holds the status at degraded, whatever Teleport does,
// until registryWritable.
func (h *health) registryFailing(err error) {
	h.mu.Lock()
	h.registry = err
	h.mu.Unlock()
	h.set(status.Degraded, fmt.Sprintf("Reading paused: cannot persist the audit position: %v (retrying)", err))
}

func (h *health) registryWritable(cluster string) {
	h.mu.Lock()
	h.registry = nil
	h.mu.Unlock()
	h.connected(cluster)
}

func (h *health) connected(cluster string) {
	h.mu.Lock()
	err := h.registry
	h.mu.Unlock()
	if err != nil {
		h.registryFailing(err)
		return
	}
	h.set(status.Running, "Reading the audit log of Teleport cluster "+cluster)
}

// searched records the outcome of one audit search.
func (h *health) searched(cluster string, err error) {
	if err == nil {
		h.connected(cluster)
		return
	}
	h.failing("Teleport audit search of cluster "+cluster+" fails", err)
}
