package pool

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/blackhole"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestGuestConnRecoversSilentGuest gives the controller's connection to a
// guest a far end that stops answering without closing, as a guest's
// virtio-serial port does when the guest's side of the connection ended:
// keepalive finds the connection dead, so the call in flight fails at
// once rather than at its deadline, and the next call is answered over a
// new connection (without keepalive both would wait out their deadlines).
func TestGuestConnRecoversSilentGuest(t *testing.T) {
	dir := t.TempDir()
	srv, err := agent.NewServer(agent.Options{})
	require.NoError(t, err)
	lis, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
	require.NoError(t, err)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(func() {
		g.Stop()
		srv.Shutdown()
	})
	hole, err := blackhole.Listen("unix", filepath.Join(dir, "guest.sock"), lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { hole.Close() })

	conn, err := newGuestConn(hole.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := pb.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = c.Hello(ctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err, "hello over a live connection")

	hole.Cut()
	ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = c.Hello(ctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
	require.Equal(t, codes.Unavailable, status.Code(err), "the call in flight fails as the connection is found dead, not by its deadline: %v", err)
	_, err = c.Hello(ctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err, "the next call, over a new connection")
}
