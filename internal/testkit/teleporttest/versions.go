package teleporttest

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gravitational/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gravitational/teleport/api/client/proto"
	"github.com/gravitational/teleport/api/types"
)

// The double can be an older Teleport (Config.Version). What each version
// lacks, as its Auth Service answers:
//
//	before 13.0: GetUnstructuredEvents (the whole teleport.auditlog.v1
//	             service): clients read with SearchEvents
//	before 14.0: StreamUnstructuredSessionEvents: clients read sessions
//	             with StreamSessionEvents
//	before 16.0: the export API (GetEventExportChunks, ExportUnstructuredEvents)
//	before 14.0: role version v7 (roles are v6 at most)
//
// The typed methods (SearchEvents, StreamSessionEvents) are served by every
// version, as Teleport still serves them.

// version is a Teleport version, major.minor.patch.
type version struct {
	major, minor, patch int
	text                string
}

func parseVersion(s string) (version, error) {
	v := version{text: s}
	core, _, _ := strings.Cut(strings.TrimPrefix(s, "v"), "-")
	parts := strings.Split(core, ".")
	nums := []*int{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		if i >= len(nums) {
			break
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("teleporttest: Teleport version %q is not major.minor.patch", s)
		}
		*nums[i] = n
	}
	return v, nil
}

func (v version) String() string { return v.text }

// atLeast reports whether the version is major.minor or newer.
func (v version) atLeast(major, minor int) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

// Version is the Teleport version the double reports.
func (s *Server) Version() string { return s.version.String() }

// unimplemented is the answer of a server without the method.
func unimplemented(service, method string) error {
	return status.Errorf(codes.Unimplemented, "unknown method %s for service %s", method, service)
}

// RoleVersions are the role versions the double's Teleport version
// accepts (tctl create refuses the others).
func (s *Server) RoleVersions() []string {
	out := []string{types.V3, types.V4, types.V5, types.V6}
	if s.version.atLeast(14, 0) {
		out = append(out, types.V7)
	}
	return out
}

// CheckRole checks a role as tctl create would on this version: a version
// it knows, and the rules teleportbeat needs spelled with known verbs.
func (s *Server) CheckRole(version string) error {
	for _, v := range s.RoleVersions() {
		if v == version {
			return nil
		}
	}
	return trace.BadParameter("role version %q is not supported", version)
}

// GetEvents is the typed audit search (client SearchEvents), served by
// every version.
func (a *authService) GetEvents(ctx context.Context, req *proto.GetEventsRequest) (*proto.Events, error) {
	if a.s.typed == nil {
		return nil, status.Error(codes.Internal, "teleporttest: no Config.Typed converter for the typed methods")
	}
	events, lastKey, err := a.s.search(ctx, SearchRequest{
		From:       req.GetStartDate(),
		To:         req.GetEndDate(),
		EventTypes: req.GetEventTypes(),
		Limit:      int(req.GetLimit()),
		Descending: types.EventOrder(req.GetOrder()) == types.EventOrderDescending,
		StartKey:   req.GetStartKey(),
	})
	if err != nil {
		return nil, err
	}
	out := &proto.Events{LastKey: lastKey}
	for _, e := range events {
		oneOf, err := a.s.typed(e)
		if err != nil {
			return nil, trace.Wrap(err, "event %s", e.ID)
		}
		out.Items = append(out.Items, oneOf)
	}
	return out, nil
}

// StreamSessionEvents is the typed session stream (client
// StreamSessionEvents), served by every version.
func (a *authService) StreamSessionEvents(req *proto.StreamSessionEventsRequest, stream proto.AuthService_StreamSessionEventsServer) error {
	if a.s.typed == nil {
		return status.Error(codes.Internal, "teleporttest: no Config.Typed converter for the typed methods")
	}
	return a.s.streamSession(stream.Context(), req.GetSessionID(), int64(req.GetStartIndex()), func(e *Event) error {
		oneOf, err := a.s.typed(e)
		if err != nil {
			return trace.Wrap(err, "session event %d", e.Index)
		}
		return stream.Send(oneOf)
	})
}
