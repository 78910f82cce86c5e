// Package packets holds captured packets and the predicates recipes match
// them with: what Device.Capture in lnsttest returns and what
// lnsttest.ExpectPackets counts.
//
// A Packet is what the agent's AF_PACKET socket read on a device: its
// time, its length on the wire, the bytes kept of it (cut to the
// capture's snaplen) and the pcap link type they start with. Decode gives
// its layers, decoded by github.com/gopacket/gopacket (the maintained fork
// of google/gopacket), and WritePcapng writes packets as a pcapng file
// that tcpdump -r and Wireshark read.
//
// Match is a typed filter, evaluated in Go on decoded packets: it needs no
// tcpdump anywhere, and it sees what a kernel BPF filter on a Linux packet
// socket cannot (an 802.1Q tag the kernel took off into the packet's
// metadata, put back by the capture). VXLAN is decoded on UDP port 4789.
package packets
