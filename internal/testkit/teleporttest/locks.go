package teleporttest

import (
	"context"
	"crypto/x509"
	"slices"
	"time"

	"github.com/google/uuid"
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

// UpsertLock stores a lock, replacing one of the same name, and, as
// Teleport's Auth Service does, writes lock.created to the audit log with
// the caller's user.
func (a *authService) UpsertLock(ctx context.Context, l *types.LockV2) (*emptypb.Empty, error) {
	if a.s.isDenied("lock") {
		return nil, trace.AccessDenied("access denied to perform action %q on %q", "create", "lock")
	}
	if l.GetName() == "" {
		return nil, trace.BadParameter("missing lock name")
	}
	if g := a.s.Faults.lockWait(); g != nil {
		if err := g.wait(ctx); err != nil {
			return nil, trace.Wrap(err)
		}
	}
	a.s.mu.Lock()
	replaced := false
	for i, old := range a.s.locks {
		if old.GetName() == l.GetName() {
			a.s.locks[i], replaced = l, true
		}
	}
	if !replaced {
		a.s.locks = append(a.s.locks, l)
	}
	a.s.mu.Unlock()
	user := ""
	if cert, ok := ctx.Value(identityKey{}).(*x509.Certificate); ok {
		user = cert.Subject.CommonName
	}
	fields := map[string]any{
		"event": "lock.created", "code": "TLK00I", "ei": 0, "uid": uuid.NewString(),
		"time": time.Now().UTC().Format(time.RFC3339Nano), "cluster_name": a.s.clusterName,
		"name": l.GetName(), "user": user, "target": lockTarget(l.Target()),
		"expires": "0001-01-01T00:00:00Z",
	}
	if exp := l.LockExpiry(); exp != nil {
		fields["expires"] = exp.UTC().Format(time.RFC3339Nano)
	}
	if ev, err := NewEvent(fields); err == nil {
		a.s.Store.Add(ev)
	}
	return &emptypb.Empty{}, nil
}

// lockTarget is a lock's target as Teleport's audit event has it.
func lockTarget(t types.LockTarget) map[string]any {
	out := map[string]any{}
	for k, v := range map[string]string{"user": t.User, "role": t.Role, "login": t.Login, "server_id": t.ServerID} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}
