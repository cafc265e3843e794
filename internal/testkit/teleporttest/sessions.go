package teleporttest

import (
	"context"
	"slices"
	"time"

	"github.com/gravitational/trace"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// AddSession stores the recording of a session: its events, with their
// "ei" indexes, as StreamUnstructuredSessionEvents serves them once the
// recording is uploaded.
func (s *Server) AddSession(sessionID string, events []*Event) {
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b *Event) int {
		switch {
		case a.Index < b.Index:
			return -1
		case a.Index > b.Index:
			return 1
		}
		return 0
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sessionID] = evs
}

// StreamUnstructuredSessionEvents streams a recording from startIndex on:
// like Teleport, every event whose index is at least startIndex, in index
// order; NotFound when the recording does not exist (yet). Teleport before
// 14 has no such method.
func (a *auditLogService) StreamUnstructuredSessionEvents(req *auditlogpb.StreamUnstructuredSessionEventsRequest, stream auditlogpb.AuditLogService_StreamUnstructuredSessionEventsServer) error {
	if !a.s.version.atLeast(14, 0) {
		return unimplemented("teleport.auditlog.v1.AuditLogService", "StreamUnstructuredSessionEvents")
	}
	return a.s.streamSession(stream.Context(), req.GetSessionId(), int64(req.GetStartIndex()), func(e *Event) error { return stream.Send(e.pb) })
}

// streamSession sends a recording's events from startIndex on, with the
// injected faults.
func (s *Server) streamSession(ctx context.Context, sessionID string, startIndex int64, send func(*Event) error) error {
	if s.isDenied("session") {
		return trace.AccessDenied("access denied to perform action %q on %q", "read", "session")
	}
	plan := s.Faults.planSession()
	if err := sleepCtx(ctx, plan.delay); err != nil {
		return err
	}
	if plan.fail {
		return errInjected
	}
	s.mu.Lock()
	evs, ok := s.sessions[sessionID]
	s.mu.Unlock()
	if !ok {
		return trace.NotFound("session %q not found", sessionID)
	}
	sent := 0
	for _, e := range evs {
		if e.Index < startIndex {
			continue
		}
		if plan.cutAfter > 0 && sent == plan.cutAfter {
			// Let what was sent reach the client, then lose the connection.
			time.Sleep(50 * time.Millisecond)
			s.CutConnections()
			<-ctx.Done()
			return ctx.Err()
		}
		if err := send(e); err != nil {
			return err
		}
		sent++
	}
	return nil
}

// RecordUploads gives every session.upload event the store holds a
// recording of n events (when it has none yet), ending just before the
// upload, so that a client shipping session recordings finds them: the
// sample events hold uploads whose recordings are not in the repository.
// It returns how many recordings it added.
func (s *Server) RecordUploads(g *Generator, n int) int {
	added := 0
	for _, e := range s.Store.All() {
		if e.Type != "session.upload" {
			continue
		}
		sid := e.pb.GetUnstructured().GetFields()["sid"].GetStringValue()
		if sid == "" {
			continue
		}
		s.mu.Lock()
		_, has := s.sessions[sid]
		s.mu.Unlock()
		if has {
			continue
		}
		rec, _ := g.recording(sid, e.Time.Add(-time.Duration(n)*50*time.Millisecond-time.Second), n)
		s.AddSession(sid, rec)
		added++
	}
	return added
}
