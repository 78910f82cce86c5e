package agent

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestCoalesceRestored sets a tap device's coalescing (tun batches rx
// frames) and restores it; a tap has no ring sizes, and a veth here has
// neither.
func TestCoalesceRestored(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	kind, data, err := devices.Marshal(devices.Tuntap{Name: "tap0", Mode: "tap"})
	require.NoError(t, err)
	_, err = c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "base", Spec: &pb.CreateLinkRequest_Generic{Generic: &pb.GenericSpec{Kind: kind, Json: data}}})
	require.NoError(t, err)
	tap := &pb.LinkRef{Host: "h1", Name: "tap0"}

	r, err := c.Coalesce(ctx, tap)
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx-frames": 0}, r.Params)
	_, err = c.SetCoalesce(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "tap0", Params: map[string]uint32{"rx-frames": 16}})
	require.NoError(t, err)
	r, err = c.Coalesce(ctx, tap)
	require.NoError(t, err)
	assert.Equal(t, uint32(16), r.Params["rx-frames"])
	assert.Contains(t, testSh(t, c, "h1", "ethtool -c tap0"), "rx-frames: 16", "as ethtool sees it")
	testRestoreClean(t, c, &log, "g", 1)
	r, err = c.Coalesce(ctx, tap)
	require.NoError(t, err)
	assert.Equal(t, uint32(0), r.Params["rx-frames"], "restored")

	_, err = c.SetCoalesce(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "tap0", Params: map[string]uint32{"rx-fames": 1}})
	testCode(t, err, codes.InvalidArgument, `"rx-fames" is none of adaptive-rx`)
	_, err = c.SetCoalesce(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "tap0"})
	testCode(t, err, codes.InvalidArgument, "none given")
	_, err = c.SetCoalesce(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "tap0", Params: map[string]uint32{"tx-usecs": 5}})
	testCode(t, err, codes.Aborted, "tap0", "no coalesce setting tx-usecs (it has rx-frames)")
	_, err = c.SetRing(ctx, &pb.SetEthtoolRequest{Host: "h1", Group: "g", Name: "tap0", Params: map[string]uint32{"rx": 256}})
	testCode(t, err, codes.Aborted, "tap0", "not supported")
	_, err = c.Ring(ctx, tap)
	testCode(t, err, codes.Aborted, "read ring sizes of \"tap0\" on host h1", "not supported")
	_, err = c.Ring(ctx, &pb.LinkRef{Host: "h1", Name: "nosuch0"})
	testCode(t, err, codes.Aborted, "nosuch0")
}
