package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/sriov"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestNumVfsRestored: a PF's VFs made through the agent against a fake
// sysfs (sriov_numvfs of "lo", which has none really) are removed at
// Restore; a count above sriov_totalvfs names the device and the limit;
// a VF index beyond the VFs names the count; a device without a bus
// device has no eswitch.
func TestNumVfsRestored(t *testing.T) {
	srv, c, _ := nicTestServer(t, 0)
	dev := filepath.Join(t.TempDir(), "lo", "device")
	require.NoError(t, os.MkdirAll(dev, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dev, "sriov_numvfs"), []byte("0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dev, "sriov_totalvfs"), []byte("8\n"), 0o644))
	srv.nic.sysNet = filepath.Dir(filepath.Dir(dev))
	ctx := testCtx(t)
	numvfs := func() string {
		b, err := os.ReadFile(filepath.Join(dev, "sriov_numvfs"))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}

	_, err := c.SetNicNumVfs(ctx, &pb.NicNumVfsRequest{Group: "g", Name: "lo", NumVfs: 4})
	require.NoError(t, err)
	assert.Equal(t, "4", numvfs())
	r, err := c.NicVfs(ctx, &pb.LinkRef{Name: "lo"})
	require.NoError(t, err)
	assert.Equal(t, uint32(4), r.NumVfs)
	assert.Equal(t, uint32(8), r.TotalVfs)
	_, err = c.SetNicNumVfs(ctx, &pb.NicNumVfsRequest{Group: "g", Name: "lo", NumVfs: 9})
	testCode(t, err, codes.Aborted, "set VFs of lo: 9 is above the device's sriov_totalvfs 8")
	rr, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Empty(t, rr.Errors)
	assert.Equal(t, int32(1), rr.Undone)
	assert.Equal(t, "0", numvfs(), "VFs removed at Restore")

	_, err = c.SetNicVf(ctx, &pb.NicVfRequest{Group: "g", Name: "lo", Vf: 2, Trust: new(bool)})
	testCode(t, err, codes.InvalidArgument, `VF 2 of "lo"`, "the device has 0 VFs")
	_, err = c.SetNicVf(ctx, &pb.NicVfRequest{Group: "g", Name: "lo", Vf: 0, Mac: "zz"})
	testCode(t, err, codes.InvalidArgument, "mac")
	_, err = c.SetNicEswitch(ctx, &pb.NicEswitchRequest{Group: "g", Name: "lo", Mode: "switchdev"})
	testCode(t, err, codes.Aborted, "devlink handle of lo")
	_, err = c.NicVfs(ctx, &pb.LinkRef{Name: "nosuch0"})
	testCode(t, err, codes.Aborted, "nosuch0")
}

// TestSriovUndoJournal: VF undos go to disk and come back as they were.
func TestSriovUndoJournal(t *testing.T) {
	on, vlan := true, uint32(0)
	for _, u := range []undo{
		{Op: opSetNumVfs, Link: "enp1s0f0", Value: "0"},
		{Op: opSetVf, Link: "enp1s0f0", Nic: &nicUndo{VF: 3, VFSet: &sriov.VFChange{Trust: &on, Vlan: &vlan, Qos: &vlan, LinkState: "auto"}}},
		{Op: opSetEswitch, Link: "enp1s0f0", Key: "pci/0000:03:00.0", Value: "legacy"},
	} {
		testJSONRoundTrip(t, u)
	}
}
