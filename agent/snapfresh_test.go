package agent

import (
	"fmt"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFreshHosts makes n namespace hosts, one after another, each with
// eth0 on one lab network, as the lab builds an instance, and returns
// their names in the order made.
func testFreshHosts(t *testing.T, c pb.AgentClient, n int) []string {
	t.Helper()
	var hosts []string
	for i := range n {
		name := fmt.Sprintf("h%d", i+1)
		testHost(t, c, name)
		_, err := c.Connect(testCtx(t), &pb.ConnectRequest{Host: name, Ifname: "eth0", Network: t.Name() + "/n1", Group: t.Name()})
		require.NoError(t, err, "connect %s", name)
		if i == 1 {
			// A device the first host has not.
			_, err := c.Connect(testCtx(t), &pb.ConnectRequest{Host: name, Ifname: "eth1", Network: t.Name() + "/n2", Group: t.Name()})
			require.NoError(t, err, "connect %s", name)
		}
		hosts = append(hosts, name)
	}
	return hosts
}

// testSnaps takes the snapshots of hosts, fresh or not, and requires them
// whole.
func testSnaps(t *testing.T, c pb.AgentClient, hosts []string, fresh bool) []string {
	t.Helper()
	r, err := c.SnapshotHosts(testCtx(t), &pb.SnapshotRequest{Hosts: hosts, Fresh: fresh})
	require.NoError(t, err)
	require.Len(t, r.Hosts, len(hosts))
	var out []string
	for i, h := range r.Hosts {
		require.Equal(t, hosts[i], h.Host)
		require.Empty(t, h.Errors, "snapshot of %s", h.Host)
		out = append(out, h.Text)
	}
	return out
}

// TestSnapshotFreshSame: the snapshots of hosts just built, taken as
// fresh (the namespace-wide sysctls read on the first and the last host
// only), are what reading every host gives.
func TestSnapshotFreshSame(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true})
	hosts := testFreshHosts(t, c, 4)
	fresh := testSnaps(t, c, hosts, true)
	full := testSnaps(t, c, hosts, false)
	for i, h := range hosts {
		assert.Equal(t, full[i], fresh[i], "host %s", h)
		assert.Contains(t, fresh[i], "/proc/sys/net/ipv4/ip_default_ttl:64\n", "host %s: a namespace-wide sysctl", h)
		assert.Contains(t, fresh[i], "/proc/sys/net/ipv6/conf/default/accept_dad:", "host %s: all and default are there", h)
		assert.Contains(t, fresh[i], "/proc/sys/net/ipv6/conf/eth0/hop_limit:", "host %s: a device's sysctl", h)
	}
	assert.Contains(t, fresh[1], "/proc/sys/net/ipv6/conf/eth1/hop_limit:", "a device only a middle host has")
}

// TestSnapshotFreshTemplate: a namespace-wide sysctl of a middle host is
// taken from the first host (the caller says nothing touched the hosts:
// here a change breaks that word, and shows which values are read), while
// a change on the last host makes the agent read every host.
func TestSnapshotFreshTemplate(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true})
	hosts := testFreshHosts(t, c, 4)
	const ttl = "/proc/sys/net/ipv4/ip_default_ttl:"
	testSh(t, c, "h2", "sysctl -qw net.ipv4.ip_default_ttl=77 net.ipv6.conf.eth0.hop_limit=33 && nft add table inet lnstfresh")
	fresh := testSnaps(t, c, hosts, true)
	assert.Contains(t, fresh[1], ttl+"64\n", "a middle host's namespace-wide sysctl comes from the first host")
	assert.NotContains(t, fresh[1], "lnstfresh", "so does its nftables ruleset")
	assert.Contains(t, fresh[1], "/proc/sys/net/ipv6/conf/eth0/hop_limit:33\n", "a device's sysctl is read on every host")
	full := testSnaps(t, c, hosts, false)
	assert.Contains(t, full[1], ttl+"77\n")
	assert.Contains(t, full[1], "nft table inet lnstfresh")
	testSh(t, c, "h2", "nft delete table inet lnstfresh")

	testSh(t, c, "h4", "nft add table inet lnstfresh")
	fresh = testSnaps(t, c, hosts, true)
	assert.Equal(t, testSnaps(t, c, hosts, false), fresh, "the last host has a ruleset: every host is read")
	assert.Contains(t, fresh[3], "nft table inet lnstfresh")
	testSh(t, c, "h4", "nft delete table inet lnstfresh")

	testSh(t, c, "h2", "sysctl -qw net.ipv4.ip_default_ttl=64")
	testSh(t, c, "h4", "sysctl -qw net.ipv4.ip_default_ttl=78")
	testSh(t, c, "h3", "sysctl -qw net.ipv4.ip_default_ttl=79")
	fresh = testSnaps(t, c, hosts, true)
	full = testSnaps(t, c, hosts, false)
	assert.Equal(t, full, fresh, "the first and the last host differ: every host is read")
	assert.Contains(t, fresh[2], ttl+"79\n")
	assert.Contains(t, fresh[3], ttl+"78\n")
	assert.Equal(t, 4, strings.Count(strings.Join(fresh, ""), ttl), "one ip_default_ttl line per host")
}
