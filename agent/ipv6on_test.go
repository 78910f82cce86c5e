package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIPv6OnByNetlink: the link message's IPv6 devconf says what the
// disable_ipv6 and addr_gen_mode sysctls say.
func TestIPv6OnByNetlink(t *testing.T) {
	srv, c := testServerOpts(t, Options{Lab: true})
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip link add v0 type veth peer name v1 && ip link add w0 type veth peer name w1 && ip link add x0 type veth peer name x1"+
		" && sysctl -qw net.ipv6.conf.w0.disable_ipv6=1 && sysctl -qw net.ipv6.conf.x0.addr_gen_mode=1")
	h, err := srv.host("h1")
	require.NoError(t, err)
	for dev, want := range map[string]bool{"v0": true, "w0": false, "x0": false} {
		on, err := h.ipv6OnByNetlink(dev)
		require.NoError(t, err, dev)
		assert.Equal(t, want, on, dev)
	}
	_, err = h.ipv6OnByNetlink("nosuch0")
	assert.Error(t, err, "a device that is not there")
}
