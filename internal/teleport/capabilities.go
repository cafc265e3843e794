package teleport

import (
	"sync"
	"sync/atomic"

	"github.com/gravitational/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elastic/elastic-agent-libs/logp"
)

// Teleport versions differ in the audit methods they serve:
//
//	method                                 since      before it, teleportbeat uses
//	GetUnstructuredEvents (audit search)   13.0       SearchEvents (typed events)
//	StreamUnstructuredSessionEvents        14.0       StreamSessionEvents (typed events)
//	GetEventExportChunks, Export...Events  16.0*      searches (* Athena backend only)
//
// teleportbeat asks for the newest method first; an Unimplemented answer
// is permanent for the connection: it is said once, and the older method is
// used from then on (typed events are converted to the same documents with
// teleport/api's events.ToUnstructured). A new connection (new credentials,
// or after Teleport was upgraded) asks again.

// capabilities are what the connected cluster was found to lack.
type capabilities struct {
	log *logp.Logger

	legacySearch   atomic.Bool
	legacySessions atomic.Bool
	once           [2]sync.Once
}

func newCapabilities(log *logp.Logger) *capabilities { return &capabilities{log: log} }

// useLegacySearch records that the cluster has no GetUnstructuredEvents.
func (c *capabilities) useLegacySearch(err error) {
	c.legacySearch.Store(true)
	c.once[0].Do(func() {
		c.log.Infow("This Teleport has no GetUnstructuredEvents (it came with Teleport 13): reading the audit log with the older SearchEvents", "error", err)
	})
}

// useLegacySessions records that the cluster has no
// StreamUnstructuredSessionEvents.
func (c *capabilities) useLegacySessions(err error) {
	c.legacySessions.Store(true)
	c.once[1].Do(func() {
		c.log.Infow("This Teleport has no StreamUnstructuredSessionEvents (it came with Teleport 14): reading session recordings with the older StreamSessionEvents", "error", err)
	})
}

// LegacySearch and LegacySessions report what the connection uses.
func (c *capabilities) LegacySearch() bool   { return c.legacySearch.Load() }
func (c *capabilities) LegacySessions() bool { return c.legacySessions.Load() }

// unimplemented reports whether err says the server lacks the method (gRPC
// Unimplemented, as teleport/api's interceptors turn it into
// trace.NotImplemented).
func unimplemented(err error) bool {
	if err == nil {
		return false
	}
	if trace.IsNotImplemented(err) {
		return true
	}
	st, ok := status.FromError(trace.Unwrap(err))
	return ok && st.Code() == codes.Unimplemented
}
