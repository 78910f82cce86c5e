package lnsttest

import (
	"context"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/require"
)

// labHost is a host h1 with an interface eth0 on network n1, taken from
// the local lab for a test of the package's insides, and given back when
// the test ends.
type labHost struct {
	lab *pool.Lab
	in  *pool.Instance
	// id is the host's id with the lab's agent, eth0 its interface's
	// name there.
	id, eth0 string
}

// localLabHost takes a labHost from the local lab; it skips the test
// when the run has no local lab (a pool run) or the lab is unavailable.
func localLabHost(t *testing.T) labHost {
	t.Helper()
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
	return labHost{lab: lab, in: in, id: in.Hosts["h1"], eth0: in.Ifname("h1", "eth0")}
}

// sh runs cmd with sh -c on the host, as the package's own jobs run,
// fails the test unless it exits 0, and returns its stdout.
func (h labHost) sh(t *testing.T, cmd string) string {
	t.Helper()
	r, err := pb.RunJobWhole(context.Background(), h.lab.Client(), &pb.StartJobRequest{Host: h.id, Argv: []string{"sh", "-c", cmd}, Internal: true})
	require.NoError(t, err, cmd)
	require.Zero(t, r.ExitCode, "%s: %s", cmd, r.Stderr)
	return string(r.Stdout)
}
