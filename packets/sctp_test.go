package packets

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatchSCTPData: Proto sctp-data finds a DATA chunk after a SACK in a
// packet cut to 96 bytes (as recipes/TestPerfSCTP captures), over IPv4
// and IPv6; a SACK alone, a packet that is not SCTP and a chunk length
// that runs past the packet are not; Proto sctp and Port match either.
func TestMatchSCTPData(t *testing.T) {
	sack := []byte{3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0, 0}
	data := []byte{0, 3, 0x05, 0x88, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0}
	data = append(data, make([]byte, 1400)...)
	common := []byte{0x13, 0x88, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 0}
	pkt := func(v6 bool, proto layers.IPProtocol, chunks ...[]byte) *Packet {
		payload := append([]byte(nil), common...)
		for _, c := range chunks {
			payload = append(payload, c...)
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		var ip gopacket.SerializableLayer = &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP{198, 18, 74, 1}, DstIP: net.IP{198, 18, 74, 2}}
		if v6 {
			eth.EthernetType = layers.EthernetTypeIPv6
			ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.ParseIP("2001:db8:74::1"), DstIP: net.ParseIP("2001:db8:74::2")}
		}
		buf := gopacket.NewSerializeBuffer()
		require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, gopacket.Payload(payload)))
		b := buf.Bytes()
		return &Packet{Length: len(b), Data: b[:min(96, len(b))], LinkType: layers.LinkTypeEthernet}
	}
	sctpData := Match{Proto: "sctp-data"}
	require.NoError(t, sctpData.Check())
	for _, v6 := range []bool{false, true} {
		assert.True(t, Match{Proto: "sctp", Port: 5000}.Match(pkt(v6, layers.IPProtocolSCTP, sack)), "v6 %v: sctp port 5000", v6)
		assert.False(t, Match{Proto: "sctp", Port: 5001}.Match(pkt(v6, layers.IPProtocolSCTP, sack)), "v6 %v: sctp port 5001", v6)
		assert.True(t, sctpData.Match(pkt(v6, layers.IPProtocolSCTP, sack, data)), "v6 %v: SACK then DATA, cut", v6)
		assert.True(t, sctpData.Match(pkt(v6, layers.IPProtocolSCTP, data)), "v6 %v: DATA, cut", v6)
		assert.False(t, sctpData.Match(pkt(v6, layers.IPProtocolSCTP, sack)), "v6 %v: SACK alone", v6)
		assert.False(t, sctpData.Match(pkt(v6, layers.IPProtocolUDP, data)), "v6 %v: not SCTP", v6)
		long := append([]byte{3, 0, 0x40, 0}, make([]byte, 12)...)
		assert.False(t, sctpData.Match(pkt(v6, layers.IPProtocolSCTP, long, data)), "v6 %v: a chunk past the packet", v6)
	}
}
