package agent

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAddAddrFailedJournalsNothing: an address add that failed with
// nothing added (no such device; IPv6 disabled on the device) leaves no
// undo in the journal, while one that succeeded leaves one.
func TestAddAddrFailedJournalsNothing(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip link add v0 type veth peer name v1 && ip link set v0 up && sysctl -qw net.ipv6.conf.v0.disable_ipv6=1")

	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "nosuch0", Cidr: "198.18.61.1/24"})
	require.Error(t, err, "add to a device that does not exist")
	_, err = c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "v0", Cidr: "2001:db8:61::1/64"})
	require.Error(t, err, "add IPv6 to a device with IPv6 disabled")
	assert.Equal(t, int32(0), testRestoreCount(t, c, "g"), "undo entries of failed adds")

	_, err = c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "v0", Cidr: "198.18.61.1/24"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), testRestoreCount(t, c, "g"), "undo entries of a successful add")
}
