package pool

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLabLinkLocalAtOnce: a freshly built lab instance's interfaces have
// their IPv6 link-local address, past duplicate address detection, as soon
// as Acquire returns (not one to two seconds later), and detection is on
// again for everything after: the interfaces' and the namespace's
// accept_dad are back to the default, and an address added afterwards is
// tentative until detected.
func TestLabLinkLocalAtOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the namespace lab needs root")
	}
	lab, err := StartLab(LabOptions{AgentLogLevel: "warn"})
	require.NoError(t, err)
	defer func() { assert.NoError(t, lab.Close()) }()
	ctx := context.Background()
	topo := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	}}
	in, err := lab.Acquire(ctx, topo)
	require.NoError(t, err)
	defer func() { assert.NoError(t, lab.Destroy(in)) }()
	c := lab.Client()
	run := func(host string, argv ...string) string {
		t.Helper()
		r, err := c.RunJob(ctx, &pb.StartJobRequest{Host: host, Argv: argv})
		require.NoError(t, err)
		require.Zero(t, r.ExitCode, "%v: %s", argv, r.Stderr)
		return string(r.Stdout)
	}
	read := func(host, key string) string {
		t.Helper()
		v, err := c.ReadValue(ctx, &pb.ValueRef{Host: host, Kind: "sysctl", Key: key})
		require.NoError(t, err)
		return v.Value
	}
	// Before anything else looks: straight after Acquire.
	for _, h := range topo.Hosts {
		for _, i := range h.Ifaces {
			out := run(in.Hosts[h.Name], "ip", "-6", "addr", "show", "dev", i.Name, "scope", "link")
			assert.Regexp(t, regexp.MustCompile(`inet6 fe80::\S+ scope link`), out, "%s %s has its link-local address", h.Name, i.Name)
			assert.NotContains(t, out, "tentative", "%s %s", h.Name, i.Name)
			assert.NotContains(t, out, "nodad", "%s %s: the address looks as one detected", h.Name, i.Name)
		}
	}
	for _, h := range topo.Hosts {
		host := in.Hosts[h.Name]
		assert.Equal(t, "1", read(host, "net.ipv6.conf.default.accept_dad"), "%s default", h.Name)
		for _, i := range h.Ifaces {
			assert.Equal(t, "1", read(host, "net.ipv6.conf."+i.Name+".accept_dad"), "%s %s", h.Name, i.Name)
		}
	}
	// Detection works as on any machine for what comes next.
	h1 := in.Hosts["h1"]
	run(h1, "ip", "addr", "add", "2001:db8:25::1/64", "dev", "eth0")
	out := run(h1, "ip", "-6", "addr", "show", "dev", "eth0")
	assert.True(t, strings.Contains(out, "2001:db8:25::1/64 scope global tentative"), "a new address is detected: %s", out)
}
