package agent

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestChannelsRestored sets a veth's rx and tx queue counts through the
// agent, reads them back as ethtool -l does, and finds them set back at
// Restore; a count above the maximum names the device and the limit, a
// kind of queue the driver lacks answers Unimplemented.
func TestChannelsRestored(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip link add veth0 type veth peer name veth1")
	ref := &pb.LinkRef{Host: "h1", Name: "veth0"}

	r, err := c.Channels(ctx, ref)
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx": 1, "tx": 1}, r.Params)
	max := r.Max["rx"]
	if max < 2 {
		t.Skipf("needs a machine with 2 or more CPUs: veth allows one rx queue per CPU, here %d, and the test sets 2", max)
	}
	_, err = c.SetChannels(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"rx": 2, "tx": 2}})
	require.NoError(t, err)
	r, err = c.Channels(ctx, ref)
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx": 2, "tx": 2}, r.Params)
	out := testSh(t, c, "h1", "ethtool -l veth0")
	assert.Regexp(t, `Current hardware settings:\s+RX:\s+2\s+TX:\s+2`, out, "as ethtool sees it")
	testRestoreClean(t, c, &log, "g", 1)
	r, err = c.Channels(ctx, ref)
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx": 1, "tx": 1}, r.Params, "restored")

	_, err = c.SetChannels(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"rx": max + 1}})
	testCode(t, err, codes.Aborted, "veth0", "above the device's maximum")
	_, err = c.SetChannels(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"combined": 2}})
	testCode(t, err, codes.Unimplemented, "veth0", "no channels setting combined")
	_, err = c.SetChannels(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"queues": 2}})
	testCode(t, err, codes.InvalidArgument, `"queues" is none of combined, other, rx, tx`)
	testSh(t, c, "h1", "ip link add br0 type bridge")
	_, err = c.Channels(ctx, &pb.LinkRef{Host: "h1", Name: "br0"})
	testCode(t, err, codes.Unimplemented, `read channels of "br0" on host h1`, "not supported")
}

// TestPauseLinkModesVeth: a veth's link modes read as ethtool shows them;
// setting them, and reading or setting pause frames, answer
// Unimplemented (veth has neither set_link_ksettings nor pause), and
// nothing is journaled.
func TestPauseLinkModesVeth(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip link add veth0 type veth peer name veth1")
	ref := &pb.LinkRef{Host: "h1", Name: "veth0"}
	r, err := c.LinkModes(ctx, ref)
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"speed": 10000, "duplex": 1, "autoneg": 0}, r.Params)
	assert.Contains(t, testSh(t, c, "h1", "ethtool veth0"), "Speed: 10000Mb/s")
	_, err = c.SetLinkModes(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"speed": 1000}})
	testCode(t, err, codes.Unimplemented, "link modes", "veth0")
	_, err = c.Pause(ctx, ref)
	testCode(t, err, codes.Unimplemented, `read pause settings of "veth0" on host h1`, "not supported")
	_, err = c.SetPause(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"rx": 1}})
	testCode(t, err, codes.Unimplemented, "veth0")
	_, err = c.SetPause(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "veth0", Params: map[string]uint32{"rx": 2}})
	testCode(t, err, codes.Aborted, "rx is a flag")
	testRestoreClean(t, c, &log, "g", 0)
}
