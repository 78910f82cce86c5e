package packets

import (
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Packet is a captured packet.
type Packet struct {
	// Time is when the host's kernel saw it.
	Time time.Time
	// Length is its length on the wire; Data is what was kept of it,
	// len(Data) <= Length.
	Length int
	Data   []byte
	// LinkType says what Data starts with: layers.LinkTypeEthernet, or
	// layers.LinkTypeRaw (an IP header, on devices without link headers).
	LinkType layers.LinkType
	// Outgoing is set when the host sent it, clear when it received it.
	Outgoing bool

	decoded gopacket.Packet
}

// Decode returns the packet's layers (decoded once, then kept).
func (p *Packet) Decode() gopacket.Packet {
	if p.decoded == nil {
		p.decoded = gopacket.NewPacket(p.Data, p.LinkType, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		md := p.decoded.Metadata()
		md.Timestamp, md.Length, md.CaptureLength = p.Time, p.Length, len(p.Data)
	}
	return p.decoded
}

// NetworkLength is the length on the wire of the packet's network-layer
// part (IP header and payload): what a device's MTU bounds. It is Length
// less the Ethernet header and any 802.1Q tags.
func (p *Packet) NetworkLength() int {
	if p.LinkType != layers.LinkTypeEthernet {
		return p.Length
	}
	n := p.Length - 14
	for off := 12; off+4 <= len(p.Data); off += 4 {
		tpid := uint16(p.Data[off])<<8 | uint16(p.Data[off+1])
		if tpid != uint16(layers.EthernetTypeDot1Q) && tpid != uint16(layers.EthernetTypeQinQ) {
			break
		}
		n -= 4
	}
	return n
}
