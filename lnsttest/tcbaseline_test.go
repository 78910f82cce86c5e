package lnsttest

import (
	"context"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTcBaseline saves a lab host's interface qdiscs as a run's first
// use of a pool machine does, leaves a raw tc change on it as a recipe
// might, and resets: the qdisc it had comes back; a second use keeps the
// first save.
func TestTcBaseline(t *testing.T) {
	s := current()
	if s == nil || s.pool != nil {
		t.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	lab, err := s.labNow()
	if err != nil {
		t.Skipf("the lab is unavailable here: %v", err)
	}
	in, err := lab.Acquire(context.Background(), pool.Topology{Hosts: []pool.TopoHost{{Name: "h1", Ifaces: []pool.TopoIface{{Name: "eth0", Net: "n1"}}}}})
	require.NoError(t, err)
	t.Cleanup(func() { lab.Release(in) })
	id, eth0 := in.Hosts["h1"], in.Ifname("h1", "eth0")
	sh := func(cmd string) string {
		t.Helper()
		r, err := pb.RunJobWhole(context.Background(), lab.Client(), &pb.StartJobRequest{Host: id, Argv: []string{"sh", "-c", cmd}, Internal: true})
		require.NoError(t, err, cmd)
		require.Zero(t, r.ExitCode, "%s: %s", cmd, r.Stderr)
		return string(r.Stdout)
	}
	h := &Host{client: lab.Client(), name: "h1", id: id, ifaces: map[string]string{"eth0": eth0}}
	sess := &session{}
	st := s.state(t)

	sh("tc qdisc add dev " + eth0 + " ingress")
	t.Cleanup(func() {
		sh("tc qdisc del dev " + eth0 + " ingress 2>/dev/null; tc qdisc del dev " + eth0 + " root 2>/dev/null; true")
	})
	before := sh("tc qdisc show dev " + eth0)
	devs := sess.saveQdiscs(t, "m1", h)
	require.Len(t, devs, 1)

	sh("tc qdisc del dev " + eth0 + " ingress && tc qdisc add dev " + eth0 + " root handle 3: htb")
	// A later recipe's first use keeps the run's first save.
	sess.saveQdiscs(t, "m1", h)
	sess.resetQdiscs(st, devs)
	assert.Equal(t, before, sh("tc qdisc show dev "+eth0))
}
