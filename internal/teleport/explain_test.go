package teleport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gravitational/trace"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// A search against an address nobody listens on fails the way gRPC says
// it; the explanation names the address dialed and the dial error, not
// "connection refused at :".
func TestARefusedSearchNamesTheAddressAndTheDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nobody listens there now

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	require.Error(t, err)

	got := Explain(trace.Wrap(err), []string{addr}).Error()
	require.Contains(t, got, "connection refused at "+addr+" (dial tcp "+addr+": connect: connection refused): is Teleport's Auth Service or Proxy listening there?")

	// Without the address (a caller that does not know it), the dial error
	// still names it.
	got = Explain(trace.Wrap(err), nil).Error()
	require.Contains(t, got, "connection refused at Teleport (dial tcp "+addr+": connect: connection refused)")
	require.NotContains(t, got, "at :")
}
