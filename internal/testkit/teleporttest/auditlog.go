package teleporttest

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/gravitational/trace"
	"google.golang.org/protobuf/proto"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
	"github.com/gravitational/teleport/api/types"
)

// auditLogService implements Teleport's AuditLogService.
type auditLogService struct {
	auditlogpb.UnimplementedAuditLogServiceServer
	s *Server
}

// GetUnstructuredEvents answers SearchUnstructuredEvents: one page of the
// audit log, with the key of the next page. Teleport before 13 has no
// teleport.auditlog.v1 service.
func (a *auditLogService) GetUnstructuredEvents(ctx context.Context, req *auditlogpb.GetUnstructuredEventsRequest) (*auditlogpb.EventsUnstructured, error) {
	if !a.s.version.atLeast(13, 0) {
		return nil, unimplemented("teleport.auditlog.v1.AuditLogService", "GetUnstructuredEvents")
	}
	events, lastKey, err := a.s.search(ctx, SearchRequest{
		From:       req.GetStartDate().AsTime(),
		To:         req.GetEndDate().AsTime(),
		EventTypes: req.GetEventTypes(),
		Limit:      int(req.GetLimit()),
		// Teleport's server reads the wire value as types.EventOrder, where
		// 0 is ascending, whatever the proto enum's names say.
		Descending: types.EventOrder(req.GetOrder()) == types.EventOrderDescending,
		StartKey:   req.GetStartKey(),
	})
	if err != nil {
		return nil, err
	}
	items := make([]*auditlogpb.EventUnstructured, len(events))
	for i, e := range events {
		items[i] = e.pb
		if a.s.randomIDs && e.pb.GetUnstructured().GetFields()["uid"].GetStringValue() == "" {
			cp := proto.Clone(e.pb).(*auditlogpb.EventUnstructured)
			cp.Id = uuid.NewString()
			items[i] = cp
		}
	}
	return &auditlogpb.EventsUnstructured{Items: items, LastKey: lastKey}, nil
}

// search runs one audit search with the injected faults.
func (s *Server) search(ctx context.Context, req SearchRequest) ([]*Event, string, error) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	plan := s.Faults.planSearch(req.StartKey != "")
	if err := sleepCtx(ctx, plan.delay); err != nil {
		return nil, "", err
	}
	if plan.fail {
		return nil, "", plan.err()
	}
	if s.isDenied("event") {
		return nil, "", trace.AccessDenied("access denied to perform action %q on %q", "list", "event")
	}
	events, lastKey, err := s.Store.Search(req)
	if err != nil {
		if errors.Is(err, ErrBadParameter) {
			return nil, "", trace.BadParameter("%s", err.Error())
		}
		return nil, "", trace.Wrap(err)
	}
	if plan.cut {
		// The page was read; the connection goes away before the answer
		// reaches the client.
		go func() {
			time.Sleep(5 * time.Millisecond)
			s.CutConnections()
		}()
		<-ctx.Done()
		return nil, "", ctx.Err()
	}
	return events, lastKey, nil
}
