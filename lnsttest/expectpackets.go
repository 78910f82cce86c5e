package lnsttest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/lnst-go/lnst/packets"
)

// PacketCount is how many matching packets ExpectPackets and
// Capture.Expect want: AtLeast, AtMost, Exactly or NoPackets.
type PacketCount struct {
	min, max int // max < 0: no bound
}

// AtLeast wants n or more packets.
func AtLeast(n int) PacketCount { return PacketCount{n, -1} }

// AtMost wants n or fewer packets.
func AtMost(n int) PacketCount { return PacketCount{0, n} }

// Exactly wants n packets.
func Exactly(n int) PacketCount { return PacketCount{n, n} }

// NoPackets wants none: "no packet larger than the MTU".
func NoPackets() PacketCount { return PacketCount{0, 0} }

func (c PacketCount) String() string {
	switch {
	case c.max < 0:
		return "at least " + strconv.Itoa(c.min)
	case c.min == c.max:
		return "exactly " + strconv.Itoa(c.min)
	}
	return "at most " + strconv.Itoa(c.max)
}

func (c PacketCount) holds(n int) bool { return n >= c.min && (c.max < 0 || n <= c.max) }

// PacketAssertion is the outcome of a packet assertion, recorded in the
// RESULTS SUMMARY and results.json under "packets <host>:<device>".
type PacketAssertion struct {
	Host   string `json:"host"`
	Device string `json:"device"`
	// Match describes the packets counted; Want how many were wanted.
	Match string `json:"match"`
	Want  string `json:"want"`
	// Got is how many matched, of Captured packets captured.
	Got      int `json:"got"`
	Captured int `json:"captured"`
	// Lost: the capture dropped packets or was cut short, so Got may be
	// too low.
	Lost bool `json:"lost"`
	Pass bool `json:"pass"`
}

func (a PacketAssertion) String() string {
	verdict := "PASS"
	if !a.Pass {
		verdict = "FAIL"
	}
	lost := ""
	if a.Lost {
		lost = ", capture lost packets"
	}
	return fmt.Sprintf("%s: %d of %d captured packets, want %s%s: %s", a.Match, a.Got, a.Captured, a.Want, lost, verdict)
}

// Expect stops the capture and checks that the number of its packets m
// matches is as want says; it fails the test otherwise, and records the
// outcome (a PacketAssertion) in the RESULTS SUMMARY either way. A capture
// that lost packets fails an upper bound (AtMost, Exactly, NoPackets): the
// lost ones might have matched. It returns the matching packets.
func (c *Capture) Expect(t testing.TB, m packets.Matcher, want PacketCount) []packets.Packet {
	t.Helper()
	all := c.Packets(t)
	got := packets.Filter(all, m)
	st := c.stats()
	a := PacketAssertion{
		Host: c.dev.host.name, Device: c.dev.name, Match: m.String(), Want: want.String(),
		Got: len(got), Captured: len(all), Lost: st.Lost(),
	}
	a.Pass = want.holds(len(got)) && !(a.Lost && want.max >= 0)
	c.dev.host.s.state(t).addRecord("packets "+a.Host+":"+a.Device, a)
	if !a.Pass {
		why := ""
		if a.Lost && want.holds(len(got)) {
			why = fmt.Sprintf(" (the capture lost packets: %+v; raise CaptureMaxBytes or lower CaptureSnaplen)", st)
		}
		t.Errorf("%s: packets on %s: %d packets match %s, want %s%s", a.Host, a.Device, a.Got, a.Match, a.Want, why)
	}
	return got
}

// expectSnaplen is what ExpectPackets keeps of a packet unless told: the
// headers of a VXLAN-encapsulated TCP packet with room to spare, so that a
// flow of 64 KiB segments costs little.
const expectSnaplen = 256

// ExpectPackets captures on d while during runs, then checks that the
// number of captured packets m matches is as want says (see
// Capture.Expect), and returns them. It keeps the first 256 bytes of each
// packet unless a CaptureSnaplen option says otherwise; m sees each
// packet's length on the wire whatever is kept.
//
//	lnsttest.ExpectPackets(t, h1.Iface("eth0"), packets.Match{VNI: 42, Proto: "icmp-echo"},
//		func() { modules.Ping{Dst: "198.18.42.2", Count: 3}.Run(t, h1) }, lnsttest.AtLeast(3))
func ExpectPackets(t testing.TB, d *Device, m packets.Matcher, during func(), want PacketCount, opts ...CaptureOpt) []packets.Packet {
	t.Helper()
	if mc, ok := m.(interface{ Check() error }); ok {
		if err := mc.Check(); err != nil {
			t.Fatalf("%s: ExpectPackets on %s: %v", d.host.name, d.name, err)
		}
	}
	c := d.Capture(t, "", append([]CaptureOpt{CaptureSnaplen(expectSnaplen)}, opts...)...)
	during()
	return c.Expect(t, m, want)
}
