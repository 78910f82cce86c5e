package recipes

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// enrtUnderlay addresses eth0 of h1 and h2 in network n of family f and
// returns the two addresses (without prefix length).
func enrtUnderlay(t *testing.T, h1, h2 *lnsttest.Host, f enrtFamily, n int) (string, string) {
	t.Helper()
	u1, u2 := f.net(n, 1), f.net(n, 2)
	h1.Iface("eth0").AddIP(t, u1)
	h2.Iface("eth0").AddIP(t, u2)
	return enrtAddr(u1), enrtAddr(u2)
}

// enrtTunnel makes the two ends of a point-to-point tunnel (spec(parent,
// local, remote) on h1 and spec(parent, remote, local) on h2, parent being
// the real name of the host's eth0), brings them up and returns them.
func enrtTunnel(t *testing.T, h1, h2 *lnsttest.Host, a1, a2 string, spec func(parent, local, remote string) devices.Spec) [2]*lnsttest.Device {
	t.Helper()
	d := [2]*lnsttest.Device{h1.Create(t, spec(h1.Iface("eth0").Name(), a1, a2)), h2.Create(t, spec(h2.Iface("eth0").Name(), a2, a1))}
	for _, e := range d {
		e.Up(t)
	}
	return d
}

// enrtFamilyOnly keeps the addresses of one family of ends.
func enrtFamilyOnly(ends map[string][2]string, family string) map[string][2]string {
	return map[string][2]string{family: ends[family]}
}

// TestGre builds an IPv4 GRE tunnel between h1 and h2 and pings and runs
// flows over it, IPv4 and IPv6 inside.
func TestGre(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "gre")
	h1, h2 := m.Host("h1"), m.Host("h2")
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[0], 120)
	d := enrtTunnel(t, h1, h2, a1, a2, func(p, l, r string) devices.Spec {
		return devices.Gre{Name: "gre1", Local: l, Remote: r, Parent: p}
	})
	require.Equal(t, "gre", d[0].Info(t).Type)
	enrtOverlay(t, h1, h2, enrtAddrs(t, 121, d), true)
}

// TestIp6Gre builds an IPv6 GRE tunnel between h1 and h2 and pings and
// runs flows over it, IPv4 and IPv6 inside.
func TestIp6Gre(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "ip6gre")
	h1, h2 := m.Host("h1"), m.Host("h2")
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[1], 122)
	d := enrtTunnel(t, h1, h2, a1, a2, func(p, l, r string) devices.Spec {
		return devices.Ip6gre{Name: "gre6", Local: l, Remote: r, Parent: p}
	})
	enrtOverlay(t, h1, h2, enrtAddrs(t, 123, d), false)
}

// TestIpIp builds an IPv4-in-IPv4 tunnel between h1 and h2 and pings and
// runs flows over it.
func TestIpIp(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "ipip")
	h1, h2 := m.Host("h1"), m.Host("h2")
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[0], 124)
	d := enrtTunnel(t, h1, h2, a1, a2, func(p, l, r string) devices.Spec {
		return devices.IpIp{Name: "ipip1", Local: l, Remote: r, Parent: p}
	})
	require.Equal(t, "ipip", d[0].Info(t).Type)
	ends := enrtAddrs(t, 125, d)
	enrtOverlay(t, h1, h2, enrtFamilyOnly(ends, "ipv4"), true)
}

// TestSit builds an IPv6-in-IPv4 tunnel between h1 and h2 and pings and
// runs a flow over it.
func TestSit(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "sit")
	h1, h2 := m.Host("h1"), m.Host("h2")
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[0], 126)
	d := enrtTunnel(t, h1, h2, a1, a2, func(p, l, r string) devices.Spec {
		return devices.Sit{Name: "sit1", Local: l, Remote: r, Parent: p}
	})
	ends := enrtAddrs(t, 127, d)
	enrtOverlay(t, h1, h2, enrtFamilyOnly(ends, "ipv6"), false)
}

// TestIp6Tnl builds an IPv4-and-IPv6-in-IPv6 tunnel (ip6tnl, mode any)
// between h1 and h2 and pings and runs flows over it, both families inside.
func TestIp6Tnl(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "ip6tnl")
	h1, h2 := m.Host("h1"), m.Host("h2")
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[1], 128)
	d := enrtTunnel(t, h1, h2, a1, a2, func(p, l, r string) devices.Spec {
		return devices.Ip6Tnl{Name: "ip6tnl1", Local: l, Remote: r, Parent: p, Proto: "any"}
	})
	enrtOverlay(t, h1, h2, enrtAddrs(t, 129, d), false)
}

// TestGeneve builds a Geneve tunnel (VNI 42) between h1 and h2 over an
// IPv4 and an IPv6 underlay and pings and runs flows over it.
func TestGeneve(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "geneve")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, under := range enrtFamilies {
		t.Run("underlay="+under.name, func(t *testing.T) {
			a1, a2 := enrtUnderlay(t, h1, h2, under, 130+i)
			d := enrtTunnel(t, h1, h2, a1, a2, func(_, _, r string) devices.Spec {
				return devices.Geneve{Name: "gnv0", ID: 42, Remote: r}
			})
			require.Equal(t, "geneve", d[0].Info(t).Type)
			enrtOverlay(t, h1, h2, enrtAddrs(t, 132+i, d), under.name == "ipv4")
		})
	}
}

// TestIpvlan puts an ipvlan (L2 mode) on h1's eth0, sharing its MAC, with
// its own addresses, and reaches it from h2.
func TestIpvlan(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "ipvlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	iv := h1.Create(t, devices.Ipvlan{Name: "ipvl0", Parent: h1.Iface("eth0").Name(), Mode: "l2"})
	iv.Up(t)
	require.Equal(t, h1.Iface("eth0").Info(t).HWAddr.String(), iv.Info(t).HWAddr.String(), "an ipvlan shares its parent's MAC")
	enrtOverlay(t, h1, h2, enrtAddrs(t, 134, [2]*lnsttest.Device{iv, h2.Iface("eth0")}), true)
}

// enrtWgKey makes a WireGuard key pair: base64 private and public keys.
func enrtWgKey(t *testing.T) (private, public string) {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	enc := base64.StdEncoding.EncodeToString
	return enc(k.Bytes()), enc(k.PublicKey().Bytes())
}

// TestWireguard builds a WireGuard tunnel between h1 and h2 over IPv4,
// with keys made by the test and configured with wg, and pings and runs
// flows over it, IPv4 and IPv6 inside.
func TestWireguard(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "wireguard")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for _, h := range []*lnsttest.Host{h1, h2} {
		if !enrtHasTool(t, h, "wg") {
			t.Skipf("%s has no wg command: this recipe requires wireguard-tools", h.Name())
		}
	}
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[0], 136)
	const port = 51820
	priv := [2]string{}
	pub := [2]string{}
	for i := range priv {
		priv[i], pub[i] = enrtWgKey(t)
	}
	under := [2]string{a1, a2}
	overlay := [2][]string{
		{enrtFamilies[0].net(137, 1), enrtFamilies[1].net(137, 1)},
		{enrtFamilies[0].net(137, 2), enrtFamilies[1].net(137, 2)},
	}
	var d [2]*lnsttest.Device
	for i, h := range []*lnsttest.Host{h1, h2} {
		peer := 1 - i
		var allowed []string
		for _, a := range overlay[peer] {
			addr := netip.MustParsePrefix(a).Addr()
			allowed = append(allowed, netip.PrefixFrom(addr, addr.BitLen()).String())
		}
		spec := devices.Wireguard{
			Name: "wg0", PrivateKey: priv[i], ListenPort: port,
			Peers: []devices.WireguardPeer{{
				PublicKey:  pub[peer],
				Endpoint:   fmt.Sprintf("%s:%d", under[peer], port),
				AllowedIPs: allowed,
			}},
		}
		d[i] = h.Create(t, spec)
		// The agent makes the link; keys and peers go in with wg, and the
		// peers out again by its Undo (an empty configuration replaces
		// them), before the link's own undo deletes it. A link already
		// gone has nothing to clear.
		h.Run(t, "wg setconf wg0 /dev/stdin <<'EOF'\n"+spec.Config()+"EOF", lnsttest.Desc("wg setconf wg0"),
			lnsttest.Undo("! ip link show wg0 >/dev/null 2>&1 || printf '[Interface]\\n' | wg setconf wg0 /dev/stdin"))
		d[i].Up(t)
	}
	enrtOverlay(t, h1, h2, enrtAddrs(t, 137, d), true)
}
