package shipper

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

// health turns what the shipper sees of Teleport into a status with a
// reason, for Elastic Agent (the unit's state in Fleet) or, standalone,
// libbeat's status log:
//   - healthy while searches succeed;
//   - degraded while Teleport cannot be reached or a search fails (the
//     shipper retries by itself; nothing is lost, events are late);
//   - failed when the credentials have expired: retrying cannot help until
//     someone renews them (the shipper keeps retrying and turns healthy
//     again once a renewed identity works).
type health struct {
	rep   status.StatusReporter
	creds expiring
	addr  []string
	now   func() time.Time

	mu    sync.Mutex
	state status.Status
	msg   string
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

func (h *health) unreachable(err error) {
	h.failing(fmt.Sprintf("Teleport unreachable at %v", h.addr), err)
}

func (h *health) connected(cluster string) {
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
