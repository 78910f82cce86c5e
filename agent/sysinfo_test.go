package agent

import (
	"os"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseNetstat(t *testing.T) {
	c := map[string]uint64{}
	parseNetstat(c, "snmp", []byte(`Ip: Forwarding DefaultTTL InReceives OutDiscards
Ip: 1 64 1234 7
Tcp: RtoAlgorithm MaxConn ActiveOpens
Tcp: 1 -1 5
Udp: InDatagrams NoPorts
Udp: 9
`))
	assert.Equal(t, map[string]uint64{
		"snmp/Ip/Forwarding": 1, "snmp/Ip/DefaultTTL": 64, "snmp/Ip/InReceives": 1234, "snmp/Ip/OutDiscards": 7,
		"snmp/Tcp/RtoAlgorithm": 1, "snmp/Tcp/ActiveOpens": 5, // MaxConn -1 is no counter; Udp's lines disagree
	}, c)
}

func TestParseSnmp6AndSoftnet(t *testing.T) {
	c := map[string]uint64{}
	parseSnmp6(c, []byte("Ip6InReceives                   \t12\nIp6OutDiscards 3\nbad line here\n"))
	assert.Equal(t, map[string]uint64{"snmp6/Ip6InReceives": 12, "snmp6/Ip6OutDiscards": 3}, c)
	c = map[string]uint64{}
	// Two CPUs, the second online one numbered 2 (column 12).
	parseSoftnet(c, []byte("0000a000 00000002 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n"+
		"00000010 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002\n"))
	assert.Equal(t, uint64(0xa000), c["softnet/cpu0/processed"])
	assert.Equal(t, uint64(2), c["softnet/cpu0/dropped"])
	assert.Equal(t, uint64(3), c["softnet/cpu0/time_squeeze"])
	assert.Equal(t, uint64(0x10), c["softnet/cpu2/processed"])
	assert.NotContains(t, c, "softnet/cpu1/processed")
}

// TestSysinfoSnapshot reads a namespace host's counters: its own
// namespace's (a ping inside it counts there, not in the agent's), its
// interface's link and ethtool statistics, and the machine's facts.
func TestSysinfoSnapshot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("namespace hosts require root")
	}
	_, c := testServer(t)
	testHost(t, c, "h1")
	ctx := testCtx(t)
	_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: t.Name(), Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "sv0", PeerName: "sv1"}}})
	require.NoError(t, err)
	snap := func(req *pb.SysinfoHostRequest) (*pb.SysinfoHostReply, error) {
		req.Host = "h1"
		r, err := c.SysinfoSnapshot(ctx, &pb.SysinfoRequest{Hosts: []*pb.SysinfoHostRequest{req}})
		if err != nil {
			return nil, err
		}
		return r.Hosts[0], nil
	}
	before, err := snap(&pb.SysinfoHostRequest{Ifaces: []string{"sv0"}, Facts: true, Counters: true, Keep: true})
	require.NoError(t, err)
	assert.Empty(t, before.Errors)
	assert.Contains(t, before.Counters, "link/sv0/tx_packets")
	assert.Contains(t, before.Counters, "ethtool/sv0/peer_ifindex", "veth's ethtool -S")
	assert.Contains(t, before.Counters, "snmp/Ip/OutRequests")
	assert.Contains(t, before.Counters, "softnet/cpu0/processed")
	require.NotNil(t, before.Facts)
	assert.NotEmpty(t, before.Facts.Kernel)
	assert.NotEmpty(t, before.Facts.Cmdline)
	require.Len(t, before.Facts.Nics, 1)
	assert.Equal(t, "veth", before.Facts.Nics[0].Driver)
	require.NotEmpty(t, before.Baseline)
	testRun(t, c, "h1", "ping", "-c", "2", "-i", "0.2", "127.0.0.1")
	after, err := snap(&pb.SysinfoHostRequest{Ifaces: []string{"sv0"}, Since: before.Baseline, Counters: true})
	require.NoError(t, err)
	assert.Nil(t, after.Facts, "facts only when asked")
	assert.Empty(t, after.Baseline, "kept only when asked")
	assert.GreaterOrEqual(t, after.Counters["snmp/Icmp/OutEchos"]-before.Counters["snmp/Icmp/OutEchos"], uint64(2))
	// The deltas are exactly the counters that changed.
	want := map[string]int64{}
	for k, v := range after.Counters {
		if old, ok := before.Counters[k]; ok && old != v {
			want[k] = int64(v - old)
		}
	}
	assert.Equal(t, want, after.Deltas)
	assert.GreaterOrEqual(t, after.Deltas["snmp/Icmp/OutEchos"], int64(2))
	assert.NotContains(t, after.Deltas, "link/sv0/tx_packets", "nothing went through sv0")
	// A baseline is used once.
	_, err = snap(&pb.SysinfoHostRequest{Since: before.Baseline})
	assert.ErrorContains(t, err, "no such snapshot")
	// Without Counters, only the deltas cross.
	kept, err := snap(&pb.SysinfoHostRequest{Keep: true})
	require.NoError(t, err)
	assert.Empty(t, kept.Counters)
}

func TestSysSnapDeltasParseChangedUnits(t *testing.T) {
	then := &sysSnap{ifaces: map[string]uint64{"link/e/rx_dropped": 1}, files: [][]byte{
		[]byte("Ip: Forwarding OutDiscards\nIp: 1 5\nUdp: InDatagrams\nUdp: 3\n"),
		[]byte("Ip6InReceives 4\n"),
		nil,
		[]byte("00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n" +
			"00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001\n"),
	}}
	now := &sysSnap{ifaces: map[string]uint64{"link/e/rx_dropped": 4}, files: [][]byte{
		[]byte("Ip: Forwarding OutDiscards\nIp: 1 9\nUdp: InDatagrams\nUdp: 3\n"),
		[]byte("Ip6InReceives 4\nIp6New 1\n"), // a line came: all parsed
		nil,
		[]byte("00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n" +
			"00000003 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001\n"),
	}}
	assert.Equal(t, map[string]int64{
		"link/e/rx_dropped": 3, "snmp/Ip/OutDiscards": 4,
		"softnet/cpu1/processed": 2, "softnet/cpu1/dropped": 2,
	}, now.deltas(then))
	assert.Equal(t, now.counters()["snmp/Ip/OutDiscards"], uint64(9))
}

func TestSysinfoSnapshotErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("namespace hosts require root")
	}
	_, c := testServer(t)
	testHost(t, c, "h1")
	rr, err := c.SysinfoSnapshot(testCtx(t), &pb.SysinfoRequest{Hosts: []*pb.SysinfoHostRequest{{Host: "h1", Ifaces: []string{"nosuch0"}, Counters: true}}})
	require.NoError(t, err, "what cannot be read is named, the rest returned")
	r := rr.Hosts[0]
	require.Len(t, r.Errors, 1)
	assert.Contains(t, r.Errors[0], "link nosuch0 on host h1")
	assert.Contains(t, r.Counters, "snmp/Ip/OutRequests")
	_, err = c.SysinfoSnapshot(testCtx(t), &pb.SysinfoRequest{Hosts: []*pb.SysinfoHostRequest{{Host: "nosuch"}}})
	assert.ErrorContains(t, err, `agent serves no host "nosuch"`)
}

// TestKmsgFollows: a record written to the kernel log after the cursor is
// in KmsgRead's answer, one before it is not; a cursor of another
// follower is answered with what the agent has, marked restarted.
func TestKmsgFollows(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("writing /dev/kmsg requires root")
	}
	_, c := testServer(t)
	ctx := testCtx(t)
	writeKmsg := func(s string) {
		require.NoError(t, os.WriteFile("/dev/kmsg", []byte(s+"\n"), 0))
	}
	tag := time.Now().Format("150405.000000000")
	writeKmsg("lnst agent test before " + tag)
	cur, err := c.KmsgCursor(ctx, &pb.KmsgCursorRequest{})
	require.NoError(t, err)
	writeKmsg("lnst agent test after " + tag)
	r, err := c.KmsgRead(ctx, &pb.KmsgReadRequest{Follower: cur.Follower, FromSeq: cur.NextSeq})
	require.NoError(t, err)
	var texts []string
	for _, rec := range r.Records {
		texts = append(texts, rec.Text)
	}
	all := strings.Join(texts, "\n")
	assert.Contains(t, all, "lnst agent test after "+tag)
	assert.NotContains(t, all, "lnst agent test before "+tag)
	assert.Zero(t, r.Lost)
	assert.False(t, r.Restarted)
	assert.Greater(t, r.NextSeq, cur.NextSeq)

	r, err = c.KmsgRead(ctx, &pb.KmsgReadRequest{Follower: "other", FromSeq: cur.NextSeq})
	require.NoError(t, err)
	assert.True(t, r.Restarted)

	// The same through SysinfoSnapshot, with no host.
	sr, err := c.SysinfoSnapshot(ctx, &pb.SysinfoRequest{KmsgCursor: true})
	require.NoError(t, err)
	require.NotNil(t, sr.KmsgCursor, sr.KmsgError)
	writeKmsg("lnst agent test via sysinfo " + tag)
	sr, err = c.SysinfoSnapshot(ctx, &pb.SysinfoRequest{KmsgRead: &pb.KmsgReadRequest{Follower: sr.KmsgCursor.Follower, FromSeq: sr.KmsgCursor.NextSeq}})
	require.NoError(t, err)
	require.NotNil(t, sr.Kmsg, sr.KmsgError)
	require.NotEmpty(t, sr.Kmsg.Records)
	assert.Equal(t, "lnst agent test via sysinfo "+tag, sr.Kmsg.Records[len(sr.Kmsg.Records)-1].Text)
}

func TestAgentLogRing(t *testing.T) {
	r := &logRing{}
	start := time.Now()
	r.Write([]byte("one\ntw"))
	r.Write([]byte("o\n"))
	lines, dropped := r.since(start)
	assert.Equal(t, []string{"one", "two"}, lines)
	assert.False(t, dropped)
	lines, _ = r.since(time.Now().Add(time.Hour))
	assert.Empty(t, lines)
	for i := 0; i < agentLogKeep+10; i++ {
		r.Write([]byte("x\n"))
	}
	lines, dropped = r.since(start)
	assert.Len(t, lines, agentLogKeep)
	assert.True(t, dropped, "lines of the window were dropped")
}
