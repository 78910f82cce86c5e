package agent

import (
	"context"
	"errors"
	"io"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// icmpFilter is `tcpdump -ddd -s 256 -y EN10MB icmp`.
var icmpFilter = []*pb.CaptureInstruction{
	{Op: 40, K: 12}, {Op: 21, Jf: 3, K: 2048}, {Op: 48, K: 23}, {Op: 21, Jf: 1, K: 1}, {Op: 6, K: 256}, {Op: 6},
}

// testPair makes h1 and h2 with addresses on network n1.
func testPair(t *testing.T, c pb.AgentClient) {
	t.Helper()
	ctx := testCtx(t)
	for h, cidr := range map[string]string{"h1": "198.18.1.1/24", "h2": "198.18.1.2/24"} {
		testHost(t, c, h)
		_, err := c.Connect(ctx, &pb.ConnectRequest{Host: h, Ifname: "eth0", Network: "n1", Group: t.Name()})
		require.NoError(t, err, "connect %s", h)
		_, err = c.AddAddr(ctx, &pb.AddrRequest{Host: h, Group: t.Name(), Name: "eth0", Cidr: cidr})
		require.NoError(t, err, "add %s on %s", cidr, h)
	}
}

// testCaptureStart starts a capture and returns its stream and started
// event.
func testCaptureStart(t *testing.T, c pb.AgentClient, req *pb.CaptureStartRequest) (grpc.ServerStreamingClient[pb.CaptureEvent], *pb.CaptureStarted) {
	t.Helper()
	st, err := c.CaptureStart(testCtx(t), req)
	require.NoError(t, err)
	ev, err := st.Recv()
	require.NoError(t, err, "capture's started event")
	require.NotNil(t, ev.GetStarted(), "first event %v is not started", ev)
	return st, ev.GetStarted()
}

// testCaptureRest reads a capture's stream to its end.
func testCaptureRest(t *testing.T, st grpc.ServerStreamingClient[pb.CaptureEvent]) ([]*pb.CapturePacket, *pb.CaptureEnd) {
	t.Helper()
	var pkts []*pb.CapturePacket
	var end *pb.CaptureEnd
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "capture stream")
		pkts = append(pkts, ev.GetPackets().GetPackets()...)
		if ev.GetEnd() != nil {
			end = ev.GetEnd()
		}
	}
	require.NotNil(t, end, "the stream ended without an end event")
	return pkts, end
}

func TestCaptureFilterAndStop(t *testing.T) {
	_, c := testServer(t)
	testPair(t, c)
	st, started := testCaptureStart(t, c, &pb.CaptureStartRequest{Host: "h1", Group: t.Name(), Device: "eth0", Filter: icmpFilter, FilterLinkType: linkTypeEthernet, Snaplen: 256})
	assert.EqualValues(t, linkTypeEthernet, started.LinkType)
	assert.NotZero(t, started.Seq, "a capture in a group journals its stop")
	// 3 echo requests of 1000 bytes and their replies; ARP is filtered out.
	testSh(t, c, "h1", "ping -c 3 -i 0.2 -s 1000 -W 5 198.18.1.2")
	_, err := c.CaptureStop(testCtx(t), &pb.CaptureRef{Host: "h1", Id: started.Id})
	require.NoError(t, err)
	pkts, end := testCaptureRest(t, st)
	require.Len(t, pkts, 6, "3 echo requests and 3 replies")
	out := 0
	for _, p := range pkts {
		assert.EqualValues(t, 1042, p.Length, "ICMP of 1000 bytes payload on Ethernet")
		assert.Len(t, p.Data, 256, "cut to the snaplen")
		assert.Equal(t, byte(1), p.Data[23], "IP protocol ICMP")
		if p.Outgoing {
			out++
		}
	}
	assert.Equal(t, 3, out, "outgoing packets: the requests")
	assert.EqualValues(t, 6, end.Packets)
	assert.False(t, end.Truncated)
	assert.Empty(t, end.Error)
	_, err = c.CaptureStop(testCtx(t), &pb.CaptureRef{Host: "h1", Id: started.Id})
	testCode(t, err, codes.NotFound, "no running capture")
}

func TestCaptureStoppedByRestore(t *testing.T) {
	_, c := testServer(t)
	testPair(t, c)
	st, _ := testCaptureStart(t, c, &pb.CaptureStartRequest{Host: "h1", Group: "capture-group", Device: "eth0"})
	testSh(t, c, "h1", "ping -c 1 -W 5 198.18.1.2")
	r, err := c.Restore(testCtx(t), &pb.RestoreRequest{Group: "capture-group"})
	require.NoError(t, err)
	assert.EqualValues(t, 1, r.Undone)
	pkts, end := testCaptureRest(t, st)
	assert.GreaterOrEqual(t, len(pkts), 2, "the ping and its reply, captured before the restore")
	assert.EqualValues(t, len(pkts), end.Packets)
}

func TestCaptureStoppedWhenCallerGoes(t *testing.T) {
	srv, c := testServer(t)
	testPair(t, c)
	ctx, cancel := context.WithCancel(testCtx(t))
	st, err := c.CaptureStart(ctx, &pb.CaptureStartRequest{Host: "h1", Device: "eth0"})
	require.NoError(t, err)
	ev, err := st.Recv()
	require.NoError(t, err)
	id := ev.GetStarted().GetId()
	cancel()
	testWaitFor(t, "the capture to stop with its caller", 10e9, func() bool { return srv.captures.get("h1", id) == nil })
}

func TestCaptureMaxBytes(t *testing.T) {
	_, c := testServer(t)
	testPair(t, c)
	st, _ := testCaptureStart(t, c, &pb.CaptureStartRequest{Host: "h1", Group: t.Name(), Device: "eth0", MaxBytes: 3000})
	testSh(t, c, "h1", "ping -c 10 -i 0.01 -s 1000 -W 5 198.18.1.2")
	pkts, end := testCaptureRest(t, st)
	assert.True(t, end.Truncated, "the capture stops on its own after max_bytes")
	var n int
	for _, p := range pkts {
		n += len(p.Data)
	}
	assert.LessOrEqual(t, n, 3000)
	assert.EqualValues(t, n, end.Bytes)
}

func TestCaptureBadRequest(t *testing.T) {
	_, c := testServer(t)
	testPair(t, c)
	for _, req := range []*pb.CaptureStartRequest{
		{Host: "h1", Device: "nosuch0"},
		{Host: "h1", Device: "eth0", Filter: []*pb.CaptureInstruction{{Op: 1 << 20}}, FilterLinkType: linkTypeEthernet},
		{Host: "h1", Device: "eth0", Filter: icmpFilter, FilterLinkType: linkTypeRaw},
	} {
		st, err := c.CaptureStart(testCtx(t), req)
		if err == nil {
			_, err = st.Recv()
		}
		testCode(t, err, codes.InvalidArgument)
	}
	st, err := c.CaptureStart(testCtx(t), &pb.CaptureStartRequest{Host: "h1", Device: "nosuch0"})
	require.NoError(t, err)
	_, err = st.Recv()
	testCode(t, err, codes.InvalidArgument, "nosuch0")
}
