package agent

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// TestTcHwCaptured parses filters as this kernel (6.18) dumped them: u32
// keys added by tc with skip_hw and with skip_sw on a veth's ingress, a
// mirred action each (testdata/tc/*.nlmsg, the tcmsg and its attributes
// of an RTM_NEWTFILTER answer). The veth offloads nothing: not_in_hw,
// in_hw_count 0, and the kernel writes TCA_STATS_BASIC_HW (zero) and
// TCA_ACT_IN_HW_COUNT for the action.
func TestTcHwCaptured(t *testing.T) {
	for file, skip := range map[string]uint32{"u32_skip_hw_mirred.nlmsg": tc.ClsFlagSkipHw, "u32_skip_sw_mirred.nlmsg": tc.ClsFlagSkipSw} {
		b, err := os.ReadFile("testdata/tc/" + file)
		require.NoError(t, err)
		o, err := parseTcMsg(b)
		require.NoError(t, err, file)
		require.Equal(t, "u32", o.Kind, file)
		require.True(t, userFilter(o), file)
		flags, count := filterHw(o)
		assert.Equal(t, skip|tc.ClsFlagNotInHw, flags, file)
		assert.Zero(t, count, file)
		_, acts := filterActions(o)
		require.Len(t, acts, 1, file)
		assert.Equal(t, tc.ActionInfo{Kind: "mirred"}, acts[0], file)

		// Listed: the flags reach the reply, and putting it back keeps
		// the skip flag only.
		pf := &pb.TcFilter{Actions: []*pb.TcAction{{Kind: "mirred"}}}
		pbTcFilterHw(pf, o, acts)
		assert.Equal(t, skip|tc.ClsFlagNotInHw, pf.ClsFlags, file)
		back := filterPutBack(o)
		back.options, err = nl.ParseRouteAttr(back.Options)
		require.NoError(t, err)
		backFlags, _ := filterHw(back)
		assert.Equal(t, skip, backFlags, file)
	}
}

// TestTcHwFlower parses a flower filter offloaded with skip_sw as a
// switchdev driver's kernel dumps it. Flower is missing from this
// kernel, so the answer is built by hand from the uapi layout
// (linux/pkt_cls.h, linux/gen_stats.h): TCA_FLOWER_FLAGS (22) with
// skip_sw|in_hw, TCA_FLOWER_IN_HW_COUNT (86) 1, and a gact action whose
// TCA_ACT_STATS has TCA_STATS_BASIC (all) and TCA_STATS_BASIC_HW (the
// hardware's part), TCA_ACT_USED_HW_STATS (9, an nla_bitfield32 with
// selector TCA_ACT_HW_STATS_ANY) and TCA_ACT_IN_HW_COUNT (10).
func TestTcHwFlower(t *testing.T) {
	assert.Equal(t, nlFlowerInHwCount, int(nl.TCA_FLOWER_IN_HW_COUNT), "netlink's numbering agrees")
	assert.Equal(t, nlStatsBasicHw, int(nl.TCA_STATS_BASIC_HW))
	assert.Equal(t, nlActInHwCount, int(nl.TCA_ACT_IN_HW_COUNT))
	msg := (&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: 5, Handle: 1, Parent: tc.HandleClsactIngress, Info: filterInfo(unix.ETH_P_IP, 1)}).Serialize()
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	opts.AddRtAttr(nl.TCA_FLOWER_KEY_ETH_TYPE, []byte{8, 0})
	opts.AddRtAttr(22, u32b(tc.ClsFlagSkipSw|tc.ClsFlagInHw))
	opts.AddRtAttr(86, u32b(1))
	act := opts.AddRtAttr(nl.TCA_FLOWER_ACT, nil).AddRtAttr(1, nil)
	act.AddRtAttr(nl.TCA_ACT_KIND, nl.ZeroTerminated("gact"))
	st := act.AddRtAttr(nl.TCA_ACT_STATS, nil)
	basic := func(bytes uint64, pkts uint32) []byte {
		b := binary.NativeEndian.AppendUint64(nil, bytes)
		return append(binary.NativeEndian.AppendUint32(b, pkts), 0, 0, 0, 0) // gnet_stats_basic, padded
	}
	st.AddRtAttr(nl.TCA_STATS_BASIC, basic(9800, 100))
	st.AddRtAttr(7, basic(9604, 98))
	st.AddRtAttr(nl.TCA_STATS_QUEUE, make([]byte, 20))
	act.AddRtAttr(9, append(u32b(1), u32b(3)...))
	act.AddRtAttr(10, u32b(1))
	b := append(msg, nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("flower")).Serialize()...)
	b = append(b, opts.Serialize()...)

	o, err := parseTcMsg(b)
	require.NoError(t, err)
	flags, count := filterHw(o)
	assert.Equal(t, uint32(tc.ClsFlagSkipSw|tc.ClsFlagInHw), flags)
	assert.Equal(t, uint32(1), count)
	_, acts := filterActions(o)
	assert.Equal(t, []tc.ActionInfo{{Kind: "gact", Stats: tc.Stats{Bytes: 9800, Packets: 100}, HwStats: tc.Stats{Bytes: 9604, Packets: 98},
		InHwCount: 1, UsedHwStats: "immediate"}}, acts)

	pf := &pb.TcFilter{Actions: []*pb.TcAction{{Kind: "gact"}}}
	pbTcFilterHw(pf, o, acts)
	assert.Equal(t, uint32(6), pf.ClsFlags)
	assert.Equal(t, uint32(1), pf.InHwCount)
	assert.Equal(t, uint64(98), pf.Actions[0].HwStats.Packets)
	assert.Equal(t, uint32(1), pf.Actions[0].InHwCount)
	assert.Equal(t, uint32(1), pf.Actions[0].UsedHwStats)

	assert.Equal(t, "immediate,delayed", hwStatsName(u32b(3)))
	assert.Equal(t, uint32(3), hwStatsBits("immediate,delayed"))
	assert.Equal(t, "", hwStatsName([]byte{1}))
}

// TestTcSkipFlagsLive adds u32 filters with SkipHw and SkipSw through the
// agent (the raw options path: netlink's U32 has no flags) on a veth's
// ingress and reads them back: the kernel keeps each skip flag and says
// not_in_hw (a veth offloads nothing); its matches and actions are
// there; the undo removes them.
func TestTcSkipFlagsLive(t *testing.T) {
	testTcRoot(t)
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	_, err := c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Ingress{}))
	require.NoError(t, err)
	_, err = c.TcAddFilter(ctx, tcFilterReq(t, "g", tc.U32{Parent: "ingress", Protocol: "ip", Prio: 1, Dst: "198.18.41.2", SkipHw: true,
		Actions: tc.ActionList{tc.Mirred{Dev: "v0", Mirror: true}}}))
	require.NoError(t, err)
	_, err = c.TcAddFilter(ctx, tcFilterReq(t, "g", tc.U32{Parent: "ingress", Protocol: "ip", Prio: 2, Dst: "198.18.41.3", SkipSw: true,
		Actions: tc.ActionList{tc.Mirred{Dev: "v0", Mirror: true}}}))
	require.NoError(t, err)
	shown := testSh(t, c, "h1", "tc filter show dev v0 ingress")
	assert.Contains(t, shown, "skip_hw not_in_hw")
	assert.Contains(t, shown, "skip_sw not_in_hw")
	assert.Contains(t, shown, "match c6122902/ffffffff at 16")

	l, err := c.TcList(ctx, &pb.TcListRequest{Host: "h1", Dev: "v0"})
	require.NoError(t, err)
	got := map[uint32]uint32{}
	for _, f := range l.Filters {
		got[f.Prio] = f.ClsFlags
		require.Len(t, f.Actions, 1)
		assert.Equal(t, "mirred", f.Actions[0].Kind)
		assert.Zero(t, f.Actions[0].InHwCount)
	}
	assert.Equal(t, map[uint32]uint32{1: tc.ClsFlagSkipHw | tc.ClsFlagNotInHw, 2: tc.ClsFlagSkipSw | tc.ClsFlagNotInHw}, got)

	testRestoreClean(t, c, &log, "g", 3)
	assert.NotContains(t, testSh(t, c, "h1", "tc qdisc show dev v0"), "ingress")
}
