package agent

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMacsecL2tpArguments: bad specs are InvalidArgument and journal
// nothing; MACsec keys go only to a macsec device.
func TestMacsecL2tpArguments(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.MacsecAdd(ctx, &pb.MacsecRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, devices.MacsecConfig{Link: "lo", TxSAs: []devices.MacsecSA{{Key: make([]byte, 15)}}})})
	testCode(t, err, codes.InvalidArgument, "key is 15 bytes, gcm-aes-128 wants 16")
	_, err = c.MacsecAdd(ctx, &pb.MacsecRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, devices.MacsecConfig{Link: "lo", TxSAs: []devices.MacsecSA{{Key: make([]byte, 16)}}})})
	testCode(t, err, codes.InvalidArgument, `device "lo" is a device, not a macsec device`)
	_, err = c.L2TpAddTunnel(ctx, &pb.L2TpRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, devices.L2tpTunnel{TunnelID: 1, PeerTunnelID: 2, Encap: "ppp", Local: "198.18.1.1", Remote: "198.18.1.2"})})
	testCode(t, err, codes.InvalidArgument, `"ppp" is not "udp" or "ip"`)
	_, err = c.L2TpAddSession(ctx, &pb.L2TpRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, devices.L2tpSession{TunnelID: 1, SessionID: 1, PeerSessionID: 1, Cookie: []byte{1}})})
	testCode(t, err, codes.InvalidArgument, "Cookie: is 1 bytes")
	assert.Zero(t, testRestoreCount(t, c, "g"), "nothing journaled")
}

// TestL2tpTunnelRestored adds an L2TP tunnel over IP with a session and
// restores them away, on a kernel with l2tp; elsewhere the error names
// the module.
func TestL2tpTunnelRestored(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip addr add 198.18.186.1/24 dev lo")
	tun := devices.L2tpTunnel{TunnelID: 11, PeerTunnelID: 12, Encap: "ip", Local: "198.18.186.1", Remote: "198.18.186.2"}
	_, err := c.L2TpAddTunnel(ctx, &pb.L2TpRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, tun)})
	if status.Code(err) == codes.Aborted && !probeOK(probeL2tp("ip")) {
		testCode(t, err, codes.Aborted, "add l2tp tunnel 11 ip", "l2tp")
		t.Skipf("the kernel has no l2tp (%v): the tunnel's restore is tested where it has", err)
	}
	require.NoError(t, err)
	_, err = c.L2TpAddSession(ctx, &pb.L2TpRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, devices.L2tpSession{TunnelID: 11, SessionID: 21, PeerSessionID: 22, Name: "l2tpeth9", Cookie: []byte{1, 2, 3, 4}})})
	require.NoError(t, err)
	assert.Contains(t, testSh(t, c, "h1", "ip link show l2tpeth9"), "l2tpeth9")
	assert.Equal(t, int32(2), testRestoreCount(t, c, "g"))
	assert.Empty(t, testSh(t, c, "h1", "ip l2tp show tunnel"))
}

func probeOK(ok bool, _ string) bool { return ok }
