package packets_test

import (
	"fmt"
	"net/netip"

	"github.com/lnst-go/lnst/packets"
)

// A Match of an ICMP echo inside VXLAN VNI 42: VNI scopes Proto and Dst
// to the packet inside the tunnel.
func ExampleMatch() {
	m := packets.Match{VNI: 42, Proto: "icmp-echo", Dst: netip.MustParseAddr("198.18.42.2")}
	fmt.Println(m)
	fmt.Println(m.Check())
	fmt.Println(packets.Match{Proto: "icmpp"}.Check())
	// Output:
	// icmp-echo dst 198.18.42.2 in vxlan vni 42
	// <nil>
	// packet match icmpp: unknown protocol "icmpp" (want one of ip, ip6, arp, tcp, udp, icmp, icmp-echo, icmp-reply, icmp6, icmp6-echo, icmp6-reply, vxlan, sctp, sctp-data)
}
