package recipes

import (
	"fmt"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestBridgeThreeHosts puts three hosts on one network and pings every
// pair, both ways.
func TestBridgeThreeHosts(t *testing.T) {
	t.Parallel()
	names := []string{"h1", "h2", "h3"}
	var reqs []lnsttest.Requirement
	for _, n := range names {
		reqs = append(reqs, lnsttest.HostReq(n, lnsttest.IfaceReq("eth0", lnsttest.Net("lan"))))
	}
	m := lnsttest.Require(t, reqs...)
	addr := map[string]string{}
	for i, n := range names {
		addr[n] = fmt.Sprintf("198.18.3.%d", i+1)
		m.Host(n).Iface("eth0").AddIP(t, addr[n]+"/24")
	}
	for _, src := range names {
		for _, dst := range names {
			if src == dst {
				continue
			}
			res := modules.Ping{Dst: addr[dst], Count: 2, Interval: 50 * time.Millisecond}.Run(t, m.Host(src))
			require.Zero(t, res.Lost, "%s -> %s", src, dst)
		}
	}
}

// TestHostBridge builds a bridge inside a host, enslaves a veth to it and
// checks the device model reports it.
func TestHostBridge(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1 := m.Host("h1")
	br := h1.Create(t, devicesBridge("br0"))
	v := h1.Create(t, devicesVeth("v0", "v1"))
	v.SetMaster(t, br)
	v.Up(t)
	br.Up(t)
	info := v.Info(t)
	require.Equal(t, "br0", info.Master)
	require.Equal(t, "veth", info.Type)
	require.Equal(t, "up", info.State)
	require.Equal(t, "bridge", br.Info(t).Type)
}
