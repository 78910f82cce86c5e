package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestShutdownWaitsForChanges: Shutdown's quiesce waits for a
// state-changing call in flight (its undo must be journaled before
// Shutdown takes the journal) and refuses new ones, while read-only and
// waiting calls still pass.
func TestShutdownWaitsForChanges(t *testing.T) {
	s := &Server{}
	done, err := s.enter("/lnst.agent.v1.Agent/WriteValue")
	require.NoError(t, err)

	quiesced := make(chan struct{})
	go func() { s.quiesce(); close(quiesced) }()
	select {
	case <-quiesced:
		t.Fatal("quiesce returned while a WriteValue was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	done()
	select {
	case <-quiesced:
	case <-time.After(5 * time.Second):
		t.Fatal("quiesce did not return once the call ended")
	}

	_, err = s.enter("/lnst.agent.v1.Agent/CreateLink")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	for _, m := range []string{"Hello", "WaitJob", "RunJob", "ReadValue"} {
		done, err := s.enter("/lnst.agent.v1.Agent/" + m)
		require.NoError(t, err, m)
		done()
	}
}

// panicky is a gRPC health service whose calls panic, as a bug in a
// handler would.
type panicky struct {
	healthpb.UnimplementedHealthServer
}

func (panicky) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	panic(fmt.Sprintf("check broke on %v", []int{1}))
}

func (panicky) Watch(*healthpb.HealthCheckRequest, grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	panic("watch broke")
}

// TestPanicRecovered serves the agent's options with a service whose
// unary and streaming calls panic: each call fails with Internal naming
// the method and the panic, and the agent (its process, and its undo
// state) goes on serving.
func TestPanicRecovered(t *testing.T) {
	srv, err := NewServer(Options{Lab: true})
	require.NoError(t, err)
	name := fmt.Sprintf("lnst-test-%d-%016x", os.Getpid(), rand.Uint64())
	lis, err := net.Listen("unix", "@"+name)
	require.NoError(t, err)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	healthpb.RegisterHealthServer(g, panicky{})
	go g.Serve(lis)
	conn, err := grpc.NewClient("unix-abstract:"+name, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		for _, err := range srv.Shutdown() {
			t.Errorf("agent shutdown: %v", err)
		}
		g.Stop()
	})
	c, hc := pb.NewAgentClient(conn), healthpb.NewHealthClient(conn)
	for range 2 {
		_, err = hc.Check(testCtx(t), &healthpb.HealthCheckRequest{})
		testCode(t, err, codes.Internal, "/grpc.health.v1.Health/Check", "the agent panicked", "check broke on [1]")
		w, err := hc.Watch(testCtx(t), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		_, err = w.Recv()
		testCode(t, err, codes.Internal, "/grpc.health.v1.Health/Watch", "watch broke")
		_, err = c.Hello(testCtx(t), &pb.HelloRequest{})
		require.NoError(t, err, "the agent serves after a panic")
	}
}

// TestCallKindsCoverService: every method of the Agent service is
// classified for Shutdown's guard, and the table names no other method,
// so a new RPC cannot be served before it is classified.
func TestCallKindsCoverService(t *testing.T) {
	served := map[string]bool{}
	for _, m := range pb.Agent_ServiceDesc.Methods {
		served[m.MethodName] = true
	}
	for _, st := range pb.Agent_ServiceDesc.Streams {
		served[st.StreamName] = true
	}
	for m := range served {
		assert.Contains(t, callKinds, m, "method %s is not classified in callKinds (changes or reads)", m)
	}
	for m, k := range callKinds {
		assert.True(t, served[m], "callKinds names %s, which the Agent service has not", m)
		assert.Contains(t, []callKind{changes, reads}, k, "kind of %s", m)
	}
	for _, m := range []string{"WaitLink", "Ring", "Coalesce", "LinkInfo", "WaitJob"} {
		assert.True(t, unguarded(m), "%s changes nothing: Shutdown must not wait for it", m)
	}
	for _, m := range []string{"CreateLink", "SetRing", "SetCoalesce", "Restore", "/grpc.health.v1.Health/Check"} {
		assert.False(t, unguarded(m), "%s is guarded", m)
	}
}

// TestStopDoesNotWaitForWaitLink: a WaitLink for a state that never comes
// does not hold up Stop: Shutdown restores at once, and the wait is cut
// when the server stops, not ended by its own timeout.
func TestStopDoesNotWaitForWaitLink(t *testing.T) {
	srv, err := NewServer(Options{Lab: true})
	require.NoError(t, err)
	name := fmt.Sprintf("lnst-test-%d-%016x", os.Getpid(), rand.Uint64())
	lis, err := net.Listen("unix", "@"+name)
	require.NoError(t, err)
	entered := make(chan struct{})
	// After the agent's own interceptors: the call is past the guard.
	g := grpc.NewServer(append(srv.ServerOptions(), grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if _, ok := req.(*pb.WaitLinkRequest); ok {
				close(entered)
			}
			return h(ctx, req)
		}))...)
	srv.Register(g)
	go g.Serve(lis)
	conn, err := grpc.NewClient("unix-abstract:"+name, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	c := pb.NewAgentClient(conn)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err = c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "d0"}}})
	require.NoError(t, err)

	waited := make(chan error, 1)
	go func() {
		// d0 stays down: only the server's stop ends this wait.
		_, err := c.WaitLink(ctx, &pb.WaitLinkRequest{Host: "h1", Name: "d0",
			Want: &pb.WaitLinkRequest_OperState{OperState: "up"}, Timeout: durationpb.New(30 * time.Second)})
		waited <- err
	}()
	<-entered
	errs := srv.Stop(g)
	assert.Empty(t, errs)
	err = <-waited
	require.Error(t, err)
	assert.NotEqual(t, codes.DeadlineExceeded, status.Code(err), "the wait ran to its timeout: Stop waited for it (%v)", err)
}
