package teleporttest

import (
	"context"
	"fmt"
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

// Session generates the recording of an interactive SSH session of n
// events (start, prints, a resize, end) and the session.upload audit event
// Teleport emits once the recording is stored.
func (g *Generator) Session(start time.Time, n int) (sessionID string, recording []*Event, upload *Event) {
	sid := g.uuid()
	recording, upload = g.recording(sid, start, n)
	return sid, recording, upload
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

// recording generates the events of session sid and its upload event.
func (g *Generator) recording(sid string, start time.Time, n int) (recording []*Event, upload *Event) {
	base := map[string]any{}
	g.sessionCommon(base)
	user, login, host := base["user"], base["login"], base["server_hostname"]
	mk := func(i int, fields map[string]any) *Event {
		fields["sid"] = sid
		fields["ei"] = i
		fields["uid"] = g.uuid()
		fields["time"] = start.Add(time.Duration(i) * 50 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		fields["user"] = user
		fields["login"] = login
		fields["server_hostname"] = host
		fields["cluster_name"] = g.ClusterName
		e, err := NewEvent(fields)
		if err != nil {
			panic(fmt.Sprintf("teleporttest: generated session event does not encode: %v", err))
		}
		return e
	}
	for i := 0; i < n; i++ {
		var f map[string]any
		switch {
		case i == 0:
			f = map[string]any{"event": "session.start", "code": "T2000I", "size": "80:25", "session_recording": "node"}
		case i == n-1:
			f = map[string]any{"event": "session.end", "code": "T2004I", "interactive": true,
				"session_start": start.UTC().Format(time.RFC3339Nano),
				"session_stop":  start.Add(time.Duration(i) * 50 * time.Millisecond).UTC().Format(time.RFC3339Nano)}
		case i%17 == 0:
			f = map[string]any{"event": "resize", "code": "T2002I", "size": "120:40"}
		default:
			f = map[string]any{"event": "print", "bytes": 24, "ms": i * 50, "offset": i * 24, "data": "$ ls -la /var/log\r\n"}
		}
		recording = append(recording, mk(i, f))
	}
	up, err := NewEvent(map[string]any{
		"event": "session.upload", "code": "T2005I", "sid": sid, "uid": g.uuid(), "ei": 0,
		"url":          "s3://teleport-recordings/" + sid,
		"time":         start.Add(time.Duration(n) * 50 * time.Millisecond).Add(time.Second).UTC().Format(time.RFC3339Nano),
		"cluster_name": g.ClusterName,
	})
	if err != nil {
		panic(fmt.Sprintf("teleporttest: generated upload event does not encode: %v", err))
	}
	return recording, up
}
