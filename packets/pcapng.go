package packets

import (
	"fmt"
	"io"
	"runtime"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes packets of one interface as a pcapng file.
type Writer struct {
	w *pcapgo.NgWriter
}

// Interface describes the interface of a pcapng file.
type Interface struct {
	// Name names it in the file ("h1:eth0").
	Name string
	// Filter is the capture's filter, "" for none.
	Filter   string
	LinkType layers.LinkType
	// Snaplen is the most bytes kept of a packet; 0: unknown.
	Snaplen int
}

// NewWriter writes the pcapng section and interface headers to w and
// returns a Writer of its packets. Flush it when done.
func NewWriter(w io.Writer, intf Interface) (*Writer, error) {
	ng, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:                intf.Name,
		Filter:              intf.Filter,
		OS:                  runtime.GOOS,
		LinkType:            intf.LinkType,
		SnapLength:          uint32(intf.Snaplen),
		TimestampResolution: 9,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "lnst-go"}})
	if err != nil {
		return nil, fmt.Errorf("write pcapng header of %s: %w", intf.Name, err)
	}
	return &Writer{w: ng}, nil
}

// Write writes a packet.
func (w *Writer) Write(p *Packet) error {
	ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: p.Length}
	return w.w.WritePacket(ci, p.Data)
}

// Flush writes out what the Writer buffers.
func (w *Writer) Flush() error { return w.w.Flush() }

// WritePcapng writes packets, all of intf, as a pcapng file.
func WritePcapng(out io.Writer, intf Interface, pkts []Packet) error {
	w, err := NewWriter(out, intf)
	if err != nil {
		return err
	}
	for i := range pkts {
		if err := w.Write(&pkts[i]); err != nil {
			return fmt.Errorf("write packet %d of %s: %w", i, intf.Name, err)
		}
	}
	return w.Flush()
}
