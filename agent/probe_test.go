package agent

import (
	"os"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestProbe probes the kernel in a throwaway namespace: the kinds this
// kernel has are found, and nothing is made in the agent's own namespace
// (a tun/tap is made by ioctl in the calling thread's namespace).
func TestProbe(t *testing.T) {
	_, c := testServer(t)
	r, err := c.Probe(testCtx(t), &pb.ProbeRequest{})
	require.NoError(t, err)
	for _, kind := range []string{"veth", "bridge", "vxlan", "macvlan", "tun"} {
		assert.True(t, r.LinkKinds[kind], "this kernel has %s", kind)
	}
	assert.Len(t, r.LinkKinds, len(probeLinks)+len(probeUserspace))
	assert.Len(t, r.Qdiscs, len(probeQdiscs))
	for _, kind := range []string{"tbf", "htb", "ingress", "clsact"} {
		assert.True(t, r.Qdiscs[kind], "this kernel has %s", kind)
	}
	assert.Len(t, r.Tc, len(probeClassifiers)+len(probeActions))
	for _, kind := range []string{"cls_u32", "act_mirred"} {
		assert.True(t, r.Tc[kind], "this kernel has %s", kind)
	}
	t.Logf("classifiers and actions: %v", r.Tc)
	for _, name := range []string{"probe0", "probe1", "parent0", "parent1"} {
		_, err := netlink.LinkByName(name)
		assert.Error(t, err, "%s was left in the agent's namespace", name)
	}
}

// TestProbeSocket: a protocol the kernel has opens; one it lacks is
// reported with the call and the kernel's answer (this kernel has no
// sctp; a kernel that has it reports it in LinkKinds).
func TestProbeSocket(t *testing.T) {
	ok, why := probeSocket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, "tcp")
	assert.True(t, ok, why)
	ok, why = probeSocket(unix.AF_INET, unix.SOCK_STREAM, 253, "socket(AF_INET, SOCK_STREAM, 253)")
	assert.False(t, ok)
	assert.Contains(t, why, "socket(AF_INET, SOCK_STREAM, 253): ")
	ok, why = probeUserspace["sctp"]()
	_, statErr := os.Stat("/proc/sys/net/sctp")
	assert.Equal(t, statErr == nil, ok, "sctp probe (%s) against /proc/sys/net/sctp (%v)", why, statErr)
}
