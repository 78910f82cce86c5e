package recipes

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/packets"
	"github.com/stretchr/testify/require"
)

// IPsec recipes (LNST's IpsecEspAeadRecipe, IpsecEspAhCompRecipe,
// VtiRecipe, XfrmInterface): two hosts on one network protect their
// traffic with xfrm states and policies, ping each other in both
// families, and the capture shows ESP (or AH) with the SA's SPI on the
// wire. The states use fixed test keys: the traffic never leaves the lab.

// ipsecKey is a test key of n bytes, different per byte seed b.
func ipsecKey(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// ipsecCbc is ESP with AES-128-CBC and HMAC-SHA256 (keys differ by seed).
func ipsecCbc(seed byte) func(*devices.XfrmState) {
	return func(s *devices.XfrmState) {
		s.Crypt = &devices.XfrmAlgo{Name: "cbc(aes)", Key: ipsecKey(seed, 16)}
		s.Auth = &devices.XfrmAlgo{Name: "hmac(sha256)", Key: ipsecKey(seed+1, 32)}
	}
}

// ipsecGcm is ESP with AES-128-GCM (rfc4106: key and 4 bytes of salt).
func ipsecGcm(seed byte) func(*devices.XfrmState) {
	return func(s *devices.XfrmState) {
		s.Aead = &devices.XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: ipsecKey(seed, 20), ICVLen: 128}
	}
}

// ipsecSA is one SA of each direction's stack: protocol, SPI and
// algorithms; the stack lists them innermost first (comp, esp, ah).
type ipsecSA struct {
	proto string
	spi   uint32
	algo  func(*devices.XfrmState)
}

// ipsecHost is a prefix of one address (/32 or /128).
func ipsecHost(a string) string {
	ad := netip.MustParseAddr(a)
	return netip.PrefixFrom(ad, ad.BitLen()).String()
}

// ipsecPair sets up SAs and policies between a[0] on h[0] and a[1] on
// h[1]: direction i (from a[i] to a[1-i]) uses stack[i]; both hosts get
// both directions' states, an out policy for what they send and an in
// policy for what they receive. sel are the selector's ends (a itself
// for host to host). mod changes every state and policy (marks, if_id).
func ipsecPair(t *testing.T, h [2]*lnsttest.Host, a, sel [2]string, mode string, stack [2][]ipsecSA, modState func(*devices.XfrmState), modPolicy func(*devices.XfrmPolicy)) {
	t.Helper()
	for i := range 2 {
		src, dst := a[i], a[1-i]
		var tmpls []devices.XfrmTmpl
		for k, sa := range stack[i] {
			s := devices.XfrmState{Src: src, Dst: dst, Proto: sa.proto, SPI: sa.spi, Mode: mode, Reqid: uint32(100*(i+1) + k)}
			if sa.algo != nil {
				sa.algo(&s)
			}
			if modState != nil {
				modState(&s)
			}
			for _, host := range h {
				host.AddXfrmState(t, s)
			}
			tmpls = append(tmpls, devices.XfrmTmpl{Src: src, Dst: dst, Proto: sa.proto, Mode: mode, Reqid: s.Reqid, Optional: sa.proto == "comp"})
		}
		for j, dir := range map[int]string{i: "out", 1 - i: "in"} {
			p := devices.XfrmPolicy{Src: sel[i], Dst: sel[1-i], Dir: dir, Tmpls: tmpls}
			if modPolicy != nil {
				modPolicy(&p)
			}
			h[j].AddXfrmPolicy(t, p)
			if dir == "in" && mode == "tunnel" {
				// A tunnel's packets for a host behind it are
				// forwarded, not delivered: they need a fwd policy.
				p.Dir = "fwd"
				h[j].AddXfrmPolicy(t, p)
			}
		}
	}
}

// ipsecMatch matches ESP or AH (proto) with spi: the SA on the wire.
func ipsecMatch(proto string, spi uint32) packets.Matcher {
	return packets.Func(fmt.Sprintf("%s spi %#x", proto, spi), func(p *packets.Packet) bool {
		switch l := p.Decode().Layer(map[string]gopacket.LayerType{"esp": layers.LayerTypeIPSecESP, "ah": layers.LayerTypeIPSecAH}[proto]).(type) {
		case *layers.IPSecESP:
			return l.SPI == spi
		case *layers.IPSecAH:
			return l.SPI == spi
		}
		return false
	})
}

// ipsecExpect pings dst from h, in both directions' sense checked by the
// caller, and asserts that the pings left dev inside proto with spi.
func ipsecExpect(t *testing.T, h *lnsttest.Host, dev *lnsttest.Device, dst, proto string, spi uint32) {
	t.Helper()
	lnsttest.ExpectPackets(t, dev, ipsecMatch(proto, spi), func() { enrtPing(t, h, dst) }, lnsttest.AtLeast(3))
}

// ipsecEsp runs the transport and tunnel variants of an ESP recipe with
// algorithms algo over each family.
func ipsecEsp(t *testing.T, m *lnsttest.Match, n int, algo func(byte) func(*devices.XfrmState)) {
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, f := range enrtFamilies {
		for j, mode := range []string{"transport", "tunnel"} {
			t.Run(f.name+"/"+mode, func(t *testing.T) {
				a1, a2 := enrtUnderlay(t, h1, h2, f, n+2*i+j)
				spi := [2]uint32{uint32(0x1000 + 0x10*(2*i+j)), uint32(0x2000 + 0x10*(2*i+j))}
				stack := [2][]ipsecSA{{{"esp", spi[0], algo(0x11)}}, {{"esp", spi[1], algo(0x21)}}}
				ends := [2]string{a1, a2}
				sel := [2]string{ipsecHost(a1), ipsecHost(a2)}
				ipsecPair(t, [2]*lnsttest.Host{h1, h2}, ends, sel, mode, stack, nil, nil)
				enrtPing(t, h2, a1)
				ipsecExpect(t, h1, h1.Iface("eth0"), a2, "esp", spi[0])
				ipsecExpect(t, h2, h1.Iface("eth0"), a1, "esp", spi[1])
				enrtIperf(t, h1, h2, a2, false)
			})
		}
	}
}

// TestIpsecEsp protects the traffic between h1 and h2 with ESP (AES-CBC
// with HMAC-SHA256), in transport and in tunnel mode, IPv4 and IPv6.
func TestIpsecEsp(t *testing.T) {
	t.Parallel()
	ipsecEsp(t, enrtTwoHosts(t, "esp4", "esp6"), 180, ipsecCbc)
}

// TestIpsecEspAead is TestIpsecEsp with the AEAD rfc4106(gcm(aes))
// (AES-GCM), which some kernels' crypto lacks.
func TestIpsecEspAead(t *testing.T) {
	t.Parallel()
	ipsecEsp(t, enrtTwoHosts(t, "esp4", "esp6", "rfc4106(gcm(aes))"), 184, ipsecGcm)
}

// TestIpsecEspAhComp stacks IPComp (deflate), ESP and AH in transport
// mode between h1 and h2, IPv4 and IPv6: large pings are compressed,
// encrypted and authenticated, and AH with its SPI is on the wire.
func TestIpsecEspAhComp(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "esp4", "esp6", "ah4", "ah6", "ipcomp", "ipcomp6")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, f := range enrtFamilies {
		t.Run(f.name, func(t *testing.T) {
			a1, a2 := enrtUnderlay(t, h1, h2, f, 188+i)
			comp := func(s *devices.XfrmState) { s.Comp = &devices.XfrmAlgo{Name: "deflate"} }
			ah := func(s *devices.XfrmState) { s.Auth = &devices.XfrmAlgo{Name: "hmac(sha256)", Key: ipsecKey(0x33, 32)} }
			stack := [2][]ipsecSA{
				{{"comp", 0x101, comp}, {"esp", 0x3101, ipsecCbc(0x41)}, {"ah", 0x4101, ah}},
				{{"comp", 0x102, comp}, {"esp", 0x3102, ipsecCbc(0x51)}, {"ah", 0x4102, ah}},
			}
			ipsecPair(t, [2]*lnsttest.Host{h1, h2}, [2]string{a1, a2}, [2]string{ipsecHost(a1), ipsecHost(a2)}, "transport", stack, nil, nil)
			enrtPing(t, h2, a1)
			ipsecExpect(t, h1, h1.Iface("eth0"), a2, "ah", 0x4101)
			// A large, compressible ping goes through IPComp.
			res := modules.Ping{Dst: a2, Count: 3, Size: 1200}.Run(t, h1)
			require.Zero(t, res.Lost, "%v", res)
			states, _ := h1.Xfrm(t)
			var compPackets uint64
			for _, s := range states {
				if s.Proto == "comp" && s.Src == a1 {
					compPackets += s.Packets
				}
			}
			require.Positive(t, compPackets, "IPComp state %s->%s counted no packets: %+v", a1, a2, states)
		})
	}
}

// TestVtiTunnel routes traffic into a VTI (IPv4) or VTI6 (IPv6) whose
// key marks it for ESP tunnel-mode states and policies of that mark.
func TestVtiTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vti", "vti6", "esp4", "esp6")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, f := range enrtFamilies {
		t.Run(f.name, func(t *testing.T) {
			a1, a2 := enrtUnderlay(t, h1, h2, f, 190+i)
			const key = 0x42
			vti := enrtTunnel(t, h1, h2, a1, a2, func(parent, local, remote string) devices.Spec {
				if f.name == "ipv4" {
					return devices.Vti{Name: "vti0", Local: local, Remote: remote, Parent: parent, IKey: key, OKey: key}
				}
				return devices.Vti6{Name: "vti0", Local: local, Remote: remote, Parent: parent, IKey: key, OKey: key}
			})
			if f.name == "ipv4" {
				// Decrypted packets come in through the VTI: its
				// own policy check would drop them.
				h1.Sysctl(t, "net.ipv4.conf.vti0.disable_policy", "1")
				h2.Sysctl(t, "net.ipv4.conf.vti0.disable_policy", "1")
			}
			any := map[string]string{"ipv4": "0.0.0.0/0", "ipv6": "::/0"}[f.name]
			spi := [2]uint32{0x5100 + uint32(i), 0x5200 + uint32(i)}
			stack := [2][]ipsecSA{{{"esp", spi[0], ipsecCbc(0x61)}}, {{"esp", spi[1], ipsecCbc(0x71)}}}
			ipsecPair(t, [2]*lnsttest.Host{h1, h2}, [2]string{a1, a2}, [2]string{any, any}, "tunnel", stack,
				func(s *devices.XfrmState) { s.Mark = key },
				func(p *devices.XfrmPolicy) { p.Mark = key })
			inner := [2]string{f.net(192+i, 1), f.net(192+i, 2)}
			vti[0].AddIP(t, inner[0])
			vti[1].AddIP(t, inner[1])
			enrtPing(t, h2, enrtAddr(inner[0]))
			ipsecExpect(t, h1, h1.Iface("eth0"), enrtAddr(inner[1]), "esp", spi[0])
		})
	}
}

// TestXfrmInterface routes traffic into an xfrm interface whose if_id
// ties it to ESP tunnel-mode states and policies, IPv4 and IPv6.
func TestXfrmInterface(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "xfrm", "esp4", "esp6")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, f := range enrtFamilies {
		t.Run(f.name, func(t *testing.T) {
			a1, a2 := enrtUnderlay(t, h1, h2, f, 194+i)
			const ifID = 42
			x := [2]*lnsttest.Device{
				h1.Create(t, devices.Xfrm{Name: "ipsec0", Parent: h1.Iface("eth0").Name(), IfID: ifID}),
				h2.Create(t, devices.Xfrm{Name: "ipsec0", Parent: h2.Iface("eth0").Name(), IfID: ifID}),
			}
			require.Equal(t, "xfrm", x[0].Info(t).Type)
			any := map[string]string{"ipv4": "0.0.0.0/0", "ipv6": "::/0"}[f.name]
			spi := [2]uint32{0x6100 + uint32(i), 0x6200 + uint32(i)}
			stack := [2][]ipsecSA{{{"esp", spi[0], ipsecCbc(0x81)}}, {{"esp", spi[1], ipsecCbc(0x91)}}}
			ipsecPair(t, [2]*lnsttest.Host{h1, h2}, [2]string{a1, a2}, [2]string{any, any}, "tunnel", stack,
				func(s *devices.XfrmState) { s.IfID = ifID },
				func(p *devices.XfrmPolicy) { p.IfID = ifID })
			inner := [2]string{f.net(196+i, 1), f.net(196+i, 2)}
			for k, d := range x {
				d.Up(t)
				d.AddIP(t, inner[k])
			}
			enrtPing(t, h2, enrtAddr(inner[0]))
			ipsecExpect(t, h1, h1.Iface("eth0"), enrtAddr(inner[1]), "esp", spi[0])
			states, _ := h1.Xfrm(t)
			for _, s := range states {
				if s.SPI == spi[0] {
					require.Positive(t, s.Packets, "state %s counted no packets", s.XfrmState)
				}
			}
		})
	}
}
