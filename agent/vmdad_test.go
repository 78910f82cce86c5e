package agent

import (
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuietFirstUp: an interface quietFirstUp was given gets its
// link-local address on its first setLink up without duplicate address
// detection (it sends no neighbour solicitation for it), and has its
// detection setting back when setLink returns; its next up is detected as
// usual.
func TestQuietFirstUp(t *testing.T) {
	srv, c := testServerOpts(t, Options{Lab: true})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip link add v0 type veth peer name v1 && ip link set v1 up")
	h, err := srv.host("h1")
	require.NoError(t, err)
	require.NoError(t, h.quietFirstUp([]string{"v0"}))
	assert.Equal(t, "0", strings.TrimSpace(testSh(t, c, "h1", "cat /proc/sys/net/ipv6/conf/v0/accept_dad")), "detection while down")

	up, down := true, false
	_, err = c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: "v0", Up: &up})
	require.NoError(t, err)
	assert.Equal(t, "1", strings.TrimSpace(testSh(t, c, "h1", "cat /proc/sys/net/ipv6/conf/v0/accept_dad")), "detection after the first up")
	assert.Contains(t, testSh(t, c, "h1", "ip -6 addr show dev v0 scope link"), "fe80::", "link-local address after the first up")
	assert.NotContains(t, testSh(t, c, "h1", "ip -6 addr show dev v0 scope link"), "tentative")
	assert.Equal(t, "0", neighSolicits(t, c), "neighbour solicitations sent by v0 for its link-local address")

	_, err = c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: "v0", Up: &down})
	require.NoError(t, err)
	_, err = c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: "v0", Up: &up})
	require.NoError(t, err)
	assert.NotEqual(t, "0", neighSolicits(t, c), "the second up is detected")
}

func neighSolicits(t *testing.T, c pb.AgentClient) string {
	t.Helper()
	return strings.TrimSpace(testSh(t, c, "h1", "awk '$1 == \"Icmp6OutNeighborSolicits\" {print $2}' /proc/net/dev_snmp6/v0"))
}
