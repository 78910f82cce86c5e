package lnsttest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureHosts requires h1 and h2 on one network, addressed.
func captureHosts(t *testing.T) (*lnsttest.Host, *lnsttest.Host) {
	t.Helper()
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.73.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.73.2/24")
	return h1, h2
}

// TestCaptureFilterOnHostE2E: with no tcpdump on the controller, the
// filter is compiled by the host's, and the capture keeps only what it
// selects; the pcapng file written tcpdump -r reads.
func TestCaptureFilterOnHostE2E(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed here: no host of the local lab can compile a filter")
	}
	h1, _ := captureHosts(t)
	// The lab agent runs already, with its own PATH: only the controller
	// loses tcpdump.
	t.Setenv("PATH", t.TempDir())
	c := h1.Iface("eth0").Capture(t, "icmp and dst host 198.18.73.2")
	h1.Run(t, "ping -c 3 -i 0.05 -W 5 198.18.73.2")
	pkts := c.Packets(t)
	require.Len(t, pkts, 3, "the echo requests only: no replies, no ARP")
	for i := range pkts {
		p := &pkts[i]
		assert.True(t, p.Outgoing)
		assert.Equal(t, layers.LinkTypeEthernet, p.LinkType)
		assert.True(t, (packets.Match{Proto: "icmp-echo"}).Match(p), "%v", p.Decode())
		assert.WithinDuration(t, time.Now(), p.Time, time.Minute)
	}
	assert.Equal(t, lnsttest.CaptureStats{Packets: 3, Bytes: 3 * 98}, c.Stats(t))
	path := filepath.Join(t.TempDir(), "h1-eth0.pcapng")
	c.WriteFile(t, path)
	out, err := exec.Command(tcpdump, "-nn", "-r", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, 3, strings.Count(string(out), "198.18.73.1 > 198.18.73.2: ICMP echo request"), "%s", out)
	_, err = os.Stat(path)
	require.NoError(t, err)
}

// TestExpectPacketsE2E: ExpectPackets counts what happens during its
// block, and its outcome lands in the results.
func TestExpectPacketsE2E(t *testing.T) {
	h1, _ := captureHosts(t)
	ping := func() { h1.Run(t, "ping -c 2 -i 0.05 -s 1400 -W 5 198.18.73.2") }
	got := lnsttest.ExpectPackets(t, h1.Iface("eth0"), packets.Match{Proto: "icmp-reply", Incoming: true}, ping, lnsttest.Exactly(2))
	require.Len(t, got, 2)
	assert.Equal(t, 1442, got[0].Length, "the length on the wire, though 256 bytes were kept")
	assert.Len(t, got[0].Data, 256)
	lnsttest.ExpectPackets(t, h1.Iface("eth0"), packets.Match{LargerThan: 1500}, ping, lnsttest.NoPackets())
}
