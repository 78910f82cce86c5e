package recipes

import (
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/packets"
	"github.com/stretchr/testify/require"
)

// Open vSwitch tunnels and bonds, made with the typed model
// (devices.OvsPort, OvsBond, OvsFlow through Host.OvsAdd): every port,
// bond and flow is journaled with its undo on the agent. Where Open
// vSwitch is not running the probe does not report the kind openvswitch,
// and the recipes skip; on the VM lab they need an image with Open
// vSwitch (-lnst.vm.ovs=true).

// ovsTunnelOverhead is what each tunnel type of Open vSwitch adds to an
// overlay frame over an IPv4 underlay: the outer IPv4 header, the
// tunnel's headers and the inner Ethernet header (Open vSwitch's
// tunnels carry frames). The kernel takes the same off a vxlan or geneve
// device's MTU when it has a lower device (VXLAN_HEADROOM,
// GENEVE_IPV4_HLEN); an internal port of Open vSwitch has no lower
// device, so the recipe sets it.
var ovsTunnelOverhead = map[string]int{
	"vxlan":  20 + 8 + 8 + 14, // IPv4, UDP, VXLAN, Ethernet
	"geneve": 20 + 8 + 8 + 14, // IPv4, UDP, Geneve without options, Ethernet
	"gre":    20 + 4 + 4 + 14, // IPv4, GRE, its key, Ethernet
}

// ovsTunnel makes, on h1 and h2, an Open vSwitch bridge br0 with a tunnel
// port of type typ (key, remote_ip the peer's underlay address over
// IPv4 network n) and an internal port int0 with overlay addresses of
// network n+1, and a flow that sends the overlay's IP packets NORMAL
// with a cookie, so that its counters show the traffic. It returns the
// overlay ends.
//
// int0's MTU is the underlay's less the tunnel's overhead, as the kernel
// gives a vxlan or geneve device over a lower device: at the underlay's
// own MTU, what int0 sends at full size does not fit in one underlay
// packet once encapsulated, and Open vSwitch sets DF on the outer header
// (df_default). A packet with DF draws a fragmentation-needed from the
// tunnel and is sent again smaller, but the IP fragments of a datagram
// larger than the MTU (a 16000-byte UDP stream's) carry no DF: the
// tunnel sends them on, the underlay drops them (FragFails), and the
// datagrams arrive only once some DF packet to the same address (a TCP
// stream's) has made the sender learn the path's MTU.
func ovsTunnel(t *testing.T, h1, h2 *lnsttest.Host, typ string, key int, n int) map[string][2]string {
	t.Helper()
	a1, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[0], n)
	hosts, under := [2]*lnsttest.Host{h1, h2}, [2]string{a1, a2}
	var ints [2]*lnsttest.Device
	for i, h := range hosts {
		br := h.Create(t, devices.OvsBridge{Name: "br0"})
		br.Up(t)
		mtu := h.Iface("eth0").Info(t).MTU - ovsTunnelOverhead[typ]
		h.OvsAdd(t, devices.OvsPort{Bridge: "br0", Name: "tun0", Type: typ, Remote: under[1-i], Local: under[i], Key: strconv.Itoa(key)})
		h.OvsAdd(t, devices.OvsPort{Bridge: "br0", Name: "int0", Type: "internal", MTU: mtu})
		h.OvsAdd(t, devices.OvsFlow{Bridge: "br0", Priority: 100, Cookie: 0x1a, Match: "ip", Actions: "normal"})
		h.OvsAdd(t, devices.OvsFlow{Bridge: "br0", Priority: 100, Cookie: 0x1b, Match: "ipv6", Actions: "normal"})
		// After the ports and flows: cleanups run newest first, and the
		// state is worth showing only before their undos.
		t.Cleanup(func() { dumpOvsOnFailure(t, h) })
		ints[i] = h.Iface("int0")
		ints[i].Up(t)
		require.Equal(t, mtu, ints[i].Info(t).MTU, "%s: MTU of int0 (mtu_request)", h.Name())
		got := map[string]devices.OvsInterface{}
		for _, x := range h.OvsInterfaces(t) {
			got[x.Name] = x
		}
		require.Equal(t, typ, got["tun0"].Type, "%s: type of tun0", h.Name())
		require.Equal(t, under[1-i], got["tun0"].Options["remote_ip"], "%s: remote_ip of tun0", h.Name())
		require.Equal(t, strconv.Itoa(key), got["tun0"].Options["key"], "%s: key of tun0", h.Name())
		require.Equal(t, "internal", got["int0"].Type)
	}
	return enrtAddrs(t, n+1, ints)
}

// ovsFlowPackets is the packet count of h's br0 flow with cookie.
func ovsFlowPackets(t *testing.T, h *lnsttest.Host, cookie uint64) int64 {
	t.Helper()
	for _, f := range h.OvsFlows(t, "br0") {
		if f.Cookie == cookie {
			return f.Packets
		}
	}
	t.Fatalf("%s: br0 has no flow with cookie %#x", h.Name(), cookie)
	return 0
}

// ovsTunnelRecipe runs an Open vSwitch tunnel recipe: pings both families
// over it, checks the packets on h1's underlay with onWire (a
// description and a matcher) and the flows' counters, and runs flows.
func ovsTunnelRecipe(t *testing.T, kind, typ, filter string, key, n int, onWire packets.Matcher) {
	m := enrtTwoHosts(t, "openvswitch", kind)
	h1, h2 := m.Host("h1"), m.Host("h2")
	ends := ovsTunnel(t, h1, h2, typ, key, n)
	c := h1.Iface("eth0").Capture(t, filter)
	lwtPingBoth(t, h1, h2, ends)
	c.Expect(t, onWire, lnsttest.AtLeast(6))
	// IP fragments carry no DF: they cross only if int0's MTU leaves
	// room for the encapsulation. Before any DF packet at full size, so
	// that no MTU learnt from a fragmentation-needed hides it.
	ovsPingFragmented(t, h1, h2, ends)
	for _, h := range []*lnsttest.Host{h1, h2} {
		require.GreaterOrEqual(t, ovsFlowPackets(t, h, 0x1a), int64(6), "%s: IPv4 flow's packets", h.Name())
		require.GreaterOrEqual(t, ovsFlowPackets(t, h, 0x1b), int64(6), "%s: IPv6 flow's packets", h.Name())
	}
	enrtOverlay(t, h1, h2, ends, true)
}

// ovsPingFragmented pings the overlay ends both ways in each family with
// 4000-byte echoes, which the sender fragments at int0's MTU, and
// requires every reply: first one, waited for at most enrtReachWait (the
// fragments match no datapath flow yet, and each goes up to
// ovs-vswitchd, which a TCG guest under load answers in hundreds of
// milliseconds, past what ping -c waits for a last reply), then 3.
func ovsPingFragmented(t *testing.T, h1, h2 *lnsttest.Host, ends map[string][2]string) {
	t.Helper()
	for _, f := range enrtFamilies {
		for _, p := range []struct {
			h   *lnsttest.Host
			dst string
		}{{h1, enrtAddr(ends[f.name][1])}, {h2, enrtAddr(ends[f.name][0])}} {
			first := modules.Ping{Dst: p.dst, Count: 1, Interval: 100 * time.Millisecond, Size: 4000, Timeout: enrtReachWait}.Run(t, p.h)
			require.Positive(t, first.Received, "%s -> %s: no reply to a 4000-byte echo, fragmented at int0's MTU, within %v: %v", p.h.Name(), p.dst, enrtReachWait, first)
			res := modules.Ping{Dst: p.dst, Count: 3, Interval: enrtPingInterval(p.h), Size: 4000}.Run(t, p.h)
			require.Equal(t, 3, res.Sent, "%s -> %s: 4000-byte echoes", p.h.Name(), p.dst)
			require.Zero(t, res.Lost, "%s -> %s: 4000-byte echoes, fragmented at int0's MTU: %v", p.h.Name(), p.dst, res)
		}
	}
}

// TestVxlanOvsTunnel joins two Open vSwitch bridges by a VXLAN tunnel
// port (key 1234) and pings and runs flows between their internal ports;
// the VNI is checked on the wire.
func TestVxlanOvsTunnel(t *testing.T) {
	t.Parallel()
	ovsTunnelRecipe(t, "vxlan", "vxlan", "udp port 4789", 1234, 210, packets.Match{VNI: 1234, Proto: "icmp-echo"})
}

// TestGreOvsTunnel is TestVxlanOvsTunnel with a GRE tunnel port (key 77,
// checked on the wire).
func TestGreOvsTunnel(t *testing.T) {
	t.Parallel()
	ovsTunnelRecipe(t, "gretap", "gre", "proto gre", 77, 212, packets.Func("gre key 77", func(p *packets.Packet) bool {
		g, _ := p.Decode().Layer(layers.LayerTypeGRE).(*layers.GRE)
		return g != nil && g.KeyPresent && g.Key == 77
	}))
}

// TestGeneveOvsTunnel is TestVxlanOvsTunnel with a Geneve tunnel port
// (VNI 4321, checked on the wire).
func TestGeneveOvsTunnel(t *testing.T) {
	t.Parallel()
	ovsTunnelRecipe(t, "geneve", "geneve", "udp port 6081", 4321, 214, packets.Func("geneve vni 4321", func(p *packets.Packet) bool {
		g, _ := p.Decode().Layer(layers.LayerTypeGeneve).(*layers.Geneve)
		return g != nil && g.VNI == 4321
	}))
}

// lacpWait bounds how long an LACP bond of Open vSwitch takes to
// negotiate and carry a first ping (LACP's slow rate sends every 30 s).
const lacpWait = 45 * time.Second

// TestOvsBond bonds eth0 and eth1 of h1 and of h2 in an Open vSwitch
// bridge, in each of active-backup, balance-slb and balance-tcp with
// LACP, with the hosts' addresses on an internal port, and pings both
// families and runs flows over it; the bond's mode is read back. The LACP
// bond falls back to active-backup where LACP cannot negotiate: the labs'
// networks are Linux bridges, which never forward LACPDUs; on switches
// that do, it runs balance-tcp. Both ports of each host are on one
// network, as LNST's bonding recipes wire them (a bond's ports go to one
// switch): on two networks each host's bond picks its own active port
// or hashes its own MAC to one, and h1 on n1 does not reach h2 on n2.
func TestOvsBond(t *testing.T) {
	t.Parallel()
	host := func(name string) lnsttest.Requirement {
		return lnsttest.HostReq(name, lnsttest.Kernel("openvswitch"),
			lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.IfaceReq("eth1", lnsttest.Net("n1")))
	}
	m := lnsttest.Require(t, host("h1"), host("h2"))
	h1, h2 := m.Host("h1"), m.Host("h2")
	enrtNoDAD(t, h1, "eth0", "eth1")
	enrtNoDAD(t, h2, "eth0", "eth1")
	for i, mode := range []struct{ mode, lacp string }{{"active-backup", ""}, {"balance-slb", ""}, {"balance-tcp", "active"}} {
		t.Run(mode.mode, func(t *testing.T) {
			var ints [2]*lnsttest.Device
			for j, h := range []*lnsttest.Host{h1, h2} {
				br := h.Create(t, devices.OvsBridge{Name: "br0"})
				br.Up(t)
				h.OvsAdd(t, devices.OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{h.Iface("eth0").Name(), h.Iface("eth1").Name()},
					Mode: mode.mode, LACP: mode.lacp, LACPFallback: mode.lacp != ""})
				h.OvsAdd(t, devices.OvsPort{Bridge: "br0", Name: "int0", Type: "internal"})
				t.Cleanup(func() { dumpOvsOnFailure(t, h) }) // before the ports' undos
				for _, p := range []string{"eth0", "eth1"} {
					h.Iface(p).Up(t)
				}
				ints[j] = h.Iface("int0")
				ints[j].Up(t)
				var bond devices.OvsPortRow
				for _, p := range h.OvsPorts(t) {
					if p.Name == "bond0" {
						bond = p
					}
				}
				require.Equal(t, mode.mode, bond.BondMode, "%s: bond_mode of bond0", h.Name())
			}
			ends := enrtAddrs(t, 216+2*i, ints)
			if mode.lacp != "" {
				// LACP negotiates (or gives up and falls back) before the
				// bond carries traffic.
				lnsttest.WaitFor(t, "the LACP bond's first ping", lacpWait, func() bool {
					return h1.Run(t, "ping -c1 -W1 "+enrtAddr(ends["ipv4"][1]), lnsttest.ExitCodes(0, 1), lnsttest.Quiet()).Result().ExitCode == 0
				})
			}
			enrtOverlay(t, h1, h2, ends, true)
		})
	}
}
