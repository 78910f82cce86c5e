package pool

import (
	"context"
	"fmt"
	"os"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLabSnapshotFresh: with SnapshotFresh, Acquire hands back with a new
// instance the snapshot of each of its hosts, and it is what the agent
// reads of each host afterwards; a reused instance has none, nor does an
// instance of a lab without the option. The instance is usable at once:
// WaitUsable, with nothing left to do on a namespace lab, returns.
func TestLabSnapshotFresh(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the namespace lab needs root")
	}
	lab, err := StartLab(LabOptions{AgentLogLevel: "warn", SnapshotFresh: true})
	require.NoError(t, err)
	defer func() { assert.NoError(t, lab.Close()) }()
	ctx := context.Background()
	var topo Topology
	for i := range 5 {
		h := TopoHost{Name: fmt.Sprintf("h%d", i+1), Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}}
		if i%2 == 1 {
			h.Ifaces = append(h.Ifaces, TopoIface{Name: "eth1", Net: "n2"})
		}
		topo.Hosts = append(topo.Hosts, h)
	}
	in, err := lab.Acquire(ctx, topo)
	require.NoError(t, err)
	require.True(t, in.Fresh)
	require.NoError(t, lab.WaitUsable(ctx, in))
	var ids []string
	for _, h := range topo.Hosts {
		ids = append(ids, in.Hosts[h.Name])
	}
	r, err := lab.Client().SnapshotHosts(ctx, &pb.SnapshotRequest{Hosts: ids})
	require.NoError(t, err)
	for i, h := range topo.Hosts {
		sn := in.FreshSnapshot(h.Name)
		if !assert.NotNil(t, sn, "host %s has no fresh snapshot", h.Name) {
			continue
		}
		assert.Equal(t, ids[i], sn.Host)
		assert.Empty(t, sn.Errors)
		assert.Equal(t, r.Hosts[i].Text, sn.Text, "host %s: the fresh snapshot against one taken now", h.Name)
		assert.Contains(t, sn.Text, "link: eth0", "host %s", h.Name)
	}
	in.DropFreshSnapshots()
	assert.Nil(t, in.FreshSnapshot("h1"), "dropped")
	lab.Release(in)
	again, err := lab.Acquire(ctx, topo)
	require.NoError(t, err)
	assert.False(t, again.Fresh)
	assert.Nil(t, again.FreshSnapshot("h1"), "a reused instance")
	assert.NoError(t, lab.Destroy(again))

	plain, err := StartLab(LabOptions{AgentLogLevel: "warn"})
	require.NoError(t, err)
	defer func() { assert.NoError(t, plain.Close()) }()
	in, err = plain.Acquire(ctx, topo)
	require.NoError(t, err)
	assert.Nil(t, in.FreshSnapshot("h1"), "a lab without SnapshotFresh")
	assert.NoError(t, plain.Destroy(in))
}
