package teleporttest

import (
	"context"
	"slices"

	"github.com/gravitational/trace"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/gravitational/teleport/api/types"
)

// Locks returns the locks created in the cluster.
func (s *Server) Locks() []*types.LockV2 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.locks)
}

// UpsertLock stores a lock, replacing one of the same name.
func (a *authService) UpsertLock(_ context.Context, l *types.LockV2) (*emptypb.Empty, error) {
	if a.s.isDenied("lock") {
		return nil, trace.AccessDenied("access denied to perform action %q on %q", "create", "lock")
	}
	if l.GetName() == "" {
		return nil, trace.BadParameter("missing lock name")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	for i, old := range a.s.locks {
		if old.GetName() == l.GetName() {
			a.s.locks[i] = l
			return &emptypb.Empty{}, nil
		}
	}
	a.s.locks = append(a.s.locks, l)
	return &emptypb.Empty{}, nil
}
