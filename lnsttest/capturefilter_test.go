package lnsttest

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDDD(t *testing.T) {
	prog, err := parseDDD("6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 1\n6 0 0 256\n6 0 0 0\n")
	require.NoError(t, err)
	require.Len(t, prog, 6)
	assert.Equal(t, &pb.CaptureInstruction{Op: 21, Jt: 0, Jf: 3, K: 2048}, prog[1])
	assert.Equal(t, &pb.CaptureInstruction{Op: 6, K: 256}, prog[4])
	for _, bad := range []string{"", "2\n6 0 0 0\n", "1\n6 0 0\n", "1\n6 0 0 -1\n", "tcpdump: syntax error"} {
		_, err := parseDDD(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestCompileFilterNamesBadFilter: a filter tcpdump cannot compile fails
// with an error naming it and saying what tcpdump said.
func TestCompileFilterNamesBadFilter(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed on this machine: the controller cannot compile filters")
	}
	_, err := compileFilter(context.Background(), nil, "icmpp and", layers.LinkTypeEthernet, 256)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"icmpp and"`)
	assert.Contains(t, err.Error(), "tcpdump on the controller cannot compile it")

	prog, err := compileFilter(context.Background(), nil, "udp port 4789", layers.LinkTypeEthernet, 300)
	require.NoError(t, err)
	last := prog[len(prog)-2]
	assert.Equal(t, uint32(300), last.K, "the program keeps snaplen bytes of a match: %v", prog)
}

func TestPacketCount(t *testing.T) {
	for _, c := range []struct {
		c    PacketCount
		n    int
		want bool
		s    string
	}{
		{AtLeast(3), 3, true, "at least 3"}, {AtLeast(3), 2, false, "at least 3"},
		{AtMost(2), 2, true, "at most 2"}, {AtMost(2), 3, false, "at most 2"},
		{Exactly(4), 4, true, "exactly 4"}, {Exactly(4), 5, false, "exactly 4"},
		{NoPackets(), 0, true, "exactly 0"}, {NoPackets(), 1, false, "exactly 0"},
	} {
		assert.Equal(t, c.want, c.c.holds(c.n), "%v holds %d", c.c, c.n)
		assert.Equal(t, c.s, c.c.String())
	}
	a := PacketAssertion{Host: "h1", Device: "eth0", Match: "icmp-echo in vxlan vni 42", Want: "at least 3", Got: 2, Captured: 9, Lost: true}
	assert.True(t, strings.HasSuffix(a.String(), "capture lost packets: FAIL"), a.String())
}
