package packets

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// icmpEcho is the layers of an ICMP echo request from src to dst, with the
// Ethernet type given.
func icmpEcho(src, dst string, etype layers.EthernetType, payload int) (*layers.Ethernet, *layers.IPv4, *layers.ICMPv4, gopacket.Payload) {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: etype}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}
	return eth, ip, icmp, gopacket.Payload(make([]byte, payload))
}

func packet(data []byte) Packet {
	return Packet{Time: time.Unix(1700000000, 5), Length: len(data), Data: data, LinkType: layers.LinkTypeEthernet}
}

// vlanPacket is an ICMP echo with 802.1Q tag 10 on the wire: the kernel
// here has no vlan devices, so the tag is crafted.
func vlanPacket(t *testing.T) Packet {
	eth, ip, icmp, pl := icmpEcho("198.18.10.1", "198.18.10.2", layers.EthernetTypeDot1Q, 56)
	tag := &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}
	return packet(serialize(t, eth, tag, ip, icmp, pl))
}

// vxlanPacket is an ICMP echo inside VXLAN VNI vni on the underlay.
func vxlanPacket(t *testing.T, vni uint32) Packet {
	ieth, iip, icmp, pl := icmpEcho("198.18.42.1", "198.18.42.2", layers.EthernetTypeIPv4, 56)
	oeth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	oip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP("198.18.1.1"), DstIP: net.ParseIP("198.18.1.2")}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 4789}
	_ = udp.SetNetworkLayerForChecksum(oip)
	vx := &layers.VXLAN{ValidIDFlag: true, VNI: vni}
	return packet(serialize(t, oeth, oip, udp, vx, ieth, iip, icmp, pl))
}

func TestMatchVLANOnTheWire(t *testing.T) {
	p := vlanPacket(t)
	for _, c := range []struct {
		m    Match
		want bool
	}{
		{Match{VLAN: 10}, true},
		{Match{VLAN: 10, Proto: "icmp-echo", Host: netip.MustParseAddr("198.18.10.2")}, true},
		{Match{VLAN: 11}, false},
		{Match{VLAN: 10, Proto: "tcp"}, false},
	} {
		if got := c.m.Match(&p); got != c.want {
			t.Errorf("%v.Match(802.1Q tag 10 ICMP echo) = %v, want %v", c.m, got, c.want)
		}
	}
	untagged := func() Packet {
		eth, ip, icmp, pl := icmpEcho("198.18.10.1", "198.18.10.2", layers.EthernetTypeIPv4, 56)
		return packet(serialize(t, eth, ip, icmp, pl))
	}()
	if (Match{VLAN: 10}).Match(&untagged) {
		t.Error("vlan 10 matched an untagged packet")
	}
	if p.NetworkLength() != untagged.NetworkLength() {
		t.Errorf("NetworkLength: tagged %d, untagged %d: the tag is not part of what the MTU bounds", p.NetworkLength(), untagged.NetworkLength())
	}
}

func TestMatchICMPInsideVXLAN(t *testing.T) {
	p := vxlanPacket(t, 42)
	for _, c := range []struct {
		m    Match
		want bool
	}{
		{Match{VNI: 42, Proto: "icmp-echo"}, true},
		{Match{VNI: 42, Proto: "icmp-echo", Dst: netip.MustParseAddr("198.18.42.2")}, true},
		// Inside the tunnel the addresses are the overlay's.
		{Match{VNI: 42, Dst: netip.MustParseAddr("198.18.1.2")}, false},
		{Match{VNI: 42, Proto: "icmp-reply"}, false},
		{Match{VNI: 43, Proto: "icmp-echo"}, false},
		{Match{Proto: "vxlan", Port: 4789, Dst: netip.MustParseAddr("198.18.1.2")}, true},
	} {
		if got := c.m.Match(&p); got != c.want {
			t.Errorf("%v.Match(ICMP echo in VXLAN 42) = %v, want %v", c.m, got, c.want)
		}
	}
}

func TestMatchLargerThanMTU(t *testing.T) {
	eth, ip, icmp, pl := icmpEcho("198.18.1.1", "198.18.1.2", layers.EthernetTypeIPv4, 1500-28)
	full := packet(serialize(t, eth, ip, icmp, pl))
	if full.NetworkLength() != 1500 {
		t.Fatalf("NetworkLength = %d, want 1500", full.NetworkLength())
	}
	if (Match{LargerThan: 1500}).Match(&full) {
		t.Error("a 1500-byte IP packet is larger than MTU 1500")
	}
	if !(Match{LargerThan: 1499}).Match(&full) {
		t.Error("a 1500-byte IP packet is not larger than 1499")
	}
	// A packet cut to a snaplen keeps its length on the wire.
	full.Data = full.Data[:96]
	if !(Match{LargerThan: 1499}).Match(&full) {
		t.Error("a cut packet lost its length on the wire")
	}
}

func TestMatchCheck(t *testing.T) {
	for _, m := range []Match{{Proto: "icmpp"}, {VLAN: 4096}, {VNI: 1 << 24}, {Port: -1}, {Outgoing: true, Incoming: true}} {
		if err := m.Check(); err == nil {
			t.Errorf("%#v.Check() = nil, want an error", m)
		}
	}
	err := Match{Proto: "icmpp"}.Check()
	if err == nil || !strings.Contains(err.Error(), `"icmpp"`) {
		t.Errorf("error %v does not name the bad protocol", err)
	}
	if err := (Match{Proto: "icmp-echo", VNI: 42}).Check(); err != nil {
		t.Error(err)
	}
}

// TestWritePcapng writes packets as pcapng and reads them back with
// gopacket's reader and, where it is installed, tcpdump.
func TestWritePcapng(t *testing.T) {
	pkts := []Packet{vlanPacket(t), vxlanPacket(t, 42)}
	var buf bytes.Buffer
	if err := WritePcapng(&buf, Interface{Name: "h1:eth0", LinkType: layers.LinkTypeEthernet, Snaplen: 262144}, pkts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "eth0.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pkts {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(data, pkts[i].Data) || !ci.Timestamp.Equal(pkts[i].Time) {
			t.Errorf("packet %d read back differs: %v %x", i, ci.Timestamp, data)
		}
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not installed: the file is checked with gopacket's reader only")
		return
	}
	out, err := exec.Command(tcpdump, "-enn", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "vlan 10") || !strings.Contains(string(out), "VXLAN") {
		t.Errorf("tcpdump -r does not show the VLAN tag and the VXLAN packet:\n%s", out)
	}
}
