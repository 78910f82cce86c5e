package nltc

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func testIndex(name string) (int, error) {
	i, ok := map[string]int{"eth0": 2, "ifb0": 7}[name]
	if !ok {
		return 0, fmt.Errorf("no device %q", name)
	}
	return i, nil
}

func ptr[T any](v T) *T { return &v }

func root(ifindex int) netlink.QdiscAttrs {
	return netlink.QdiscAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_ROOT}
}

func TestQdisc(t *testing.T) {
	cases := []struct {
		spec tc.Qdisc
		want netlink.Qdisc
	}{
		{tc.Tbf{Handle: "1:", Rate: 8 * tc.Mbit, Burst: 10000, Limit: 30000},
			&netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: 2, Parent: netlink.HANDLE_ROOT, Handle: 0x10000},
				Rate: 1e6, Limit: 30000, Buffer: netlink.Xmittime(1e6, 10000)}},
		// Latency 50ms at 1 MB/s: 50,000 bytes, plus the bucket.
		{tc.Tbf{Rate: 8 * tc.Mbit, Burst: 10000, Latency: 50 * time.Millisecond},
			&netlink.Tbf{QdiscAttrs: root(2), Rate: 1e6, Limit: 60000, Buffer: netlink.Xmittime(1e6, 10000)}},
		{tc.Tbf{Parent: "1:10", Rate: 80 * tc.Gbit, Burst: 1 << 20, Limit: 1 << 20, Peakrate: 160 * tc.Gbit, Minburst: 1500},
			&netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: 2, Parent: 0x10010}, Rate: 1e10, Limit: 1 << 20,
				Buffer: netlink.Xmittime(1e10, 1<<20), Peakrate: 2e10, Minburst: netlink.Xmittime(2e10, 1500)}},
		{tc.Htb{Handle: "1:", Default: "1:20", R2Q: 5, DirectQlen: ptr(100)},
			&netlink.Htb{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: 2, Parent: netlink.HANDLE_ROOT, Handle: 0x10000},
				Version: 3, Rate2Quantum: 5, Defcls: 0x20, DirectQlen: ptr(uint32(100))}},
		{tc.Htb{}, netlink.NewHtb(root(2))},
		{tc.Netem{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 1, Duplicate: 2, Reorder: 25, Corrupt: 0.5, Rate: 80 * tc.Mbit},
			netlink.NewNetem(root(2), netlink.NetemQdiscAttrs{Latency: 20000, Jitter: 5000, Loss: 1, Duplicate: 2, ReorderProb: 25, CorruptProb: 0.5, Rate64: 1e7})},
		{tc.Fq{Limit: 1000, FlowLimit: 50, Quantum: 3000, MaxRate: 8 * tc.Mbit, NoPacing: true},
			&netlink.Fq{QdiscAttrs: root(2), PacketLimit: 1000, FlowPacketLimit: 50, Quantum: 3000, FlowMaxRate: 1e6, HorizonDropPolicy: netlink.HORIZON_DROP_POLICY_DEFAULT}},
		{tc.FqCodel{Limit: 1000, Flows: 64, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond},
			&netlink.FqCodel{QdiscAttrs: root(2), Limit: 1000, Flows: 64, Target: 5000, Interval: 100000, ECN: 1}},
		{tc.FqCodel{NoECN: true}, &netlink.FqCodel{QdiscAttrs: root(2)}},
		{tc.Prio{}, netlink.NewPrio(root(2))},
		{tc.Prio{Bands: 2, Priomap: []int{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}},
			&netlink.Prio{QdiscAttrs: root(2), Bands: 2, PriorityMap: [16]uint8{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}}},
		{tc.Ingress{}, &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: 2, Parent: netlink.HANDLE_INGRESS, Handle: 0xffff0000}}},
		{tc.Clsact{}, &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: 2, Parent: netlink.HANDLE_INGRESS, Handle: 0xffff0000}}},
	}
	for _, c := range cases {
		got, err := Qdisc(c.spec, 2)
		require.NoError(t, err, "%#v", c.spec)
		assert.Equal(t, c.want, got, "%#v", c.spec)
		assert.Equal(t, c.spec.Kind(), got.Type())
	}
	_, err := Qdisc(tc.Tbf{}, 2)
	assert.ErrorContains(t, err, "tbf Rate")
	_, err = Qdisc(nil, 2)
	assert.Error(t, err)
}

func TestClass(t *testing.T) {
	got, err := Class(tc.HtbClass{Parent: "1:", ClassID: "1:10", Rate: 8 * tc.Mbit, Ceil: 16 * tc.Mbit, Burst: 15000, Prio: 2}, 2)
	require.NoError(t, err)
	want := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: 2, Parent: 0x10000, Handle: 0x10010},
		netlink.HtbClassAttrs{Rate: 8e6, Ceil: 16e6, Buffer: 15000, Prio: 2})
	assert.Equal(t, want, got)
	hc := got.(*netlink.HtbClass)
	assert.Equal(t, uint64(1e6), hc.Rate, "bytes per second")
	assert.Equal(t, uint64(2e6), hc.Ceil)
	assert.Equal(t, netlink.Xmittime(1e6, 15000), hc.Buffer)
	_, err = Class(tc.HtbClass{Parent: "1:"}, 2)
	assert.ErrorContains(t, err, "htb class ClassID")
}

func TestFilter(t *testing.T) {
	tcp := nl.IPProto(unix.IPPROTO_TCP)
	cases := []struct {
		spec tc.Filter
		want netlink.Filter
	}{
		{tc.U32{Parent: "1:", Protocol: "ip", Prio: 1, ClassID: "1:10", IPProto: "tcp", DstPort: 5201},
			&netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: 2, Parent: 0x10000, Priority: 1, Protocol: unix.ETH_P_IP},
				ClassId: 0x10010, Sel: &netlink.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Nkeys: 2, Keys: []netlink.TcU32Key{
					{Val: 6 << 16, Mask: 0xff0000, Off: 8}, {Val: 5201, Mask: 0xffff, Off: 20}}}}},
		// No key: netlink's own match-all selector.
		{tc.U32{Parent: "ingress", Prio: 2, Actions: tc.ActionList{tc.Mirred{Dev: "ifb0"}}},
			&netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: 2, Parent: tc.HandleClsactIngress, Priority: 2, Protocol: unix.ETH_P_ALL},
				Actions: []netlink.Action{netlink.NewMirredAction(7)}}},
		{tc.Flower{Parent: "egress", Protocol: "ip", Prio: 3, IPProto: "tcp", DstPort: 80, Src: "198.18.1.0/24", DstMAC: "02:00:00:00:00:09",
			SkipHw: true, Actions: tc.ActionList{tc.Gact{Verdict: "drop"}}},
			&netlink.Flower{FilterAttrs: netlink.FilterAttrs{LinkIndex: 2, Parent: tc.HandleClsactEgress, Priority: 3, Protocol: unix.ETH_P_IP},
				EthType: unix.ETH_P_IP, IPProto: &tcp, DestPort: 80, SrcIP: net.IP{198, 18, 1, 0}, SrcIPMask: net.CIDRMask(24, 32),
				DestMac: net.HardwareAddr{2, 0, 0, 0, 0, 9}, SkipHw: true,
				Actions: []netlink.Action{&netlink.GenericAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_SHOT}}}}},
		{tc.Flower{Parent: "ingress", Protocol: "ipv6", Prio: 1, Dst: "2001:db8::1", ClassID: "1:1"},
			&netlink.Flower{FilterAttrs: netlink.FilterAttrs{LinkIndex: 2, Parent: tc.HandleClsactIngress, Priority: 1, Protocol: unix.ETH_P_IPV6},
				ClassId: 0x10001, EthType: unix.ETH_P_IPV6, DestIP: net.ParseIP("2001:db8::1").To16(), DestIPMask: net.CIDRMask(128, 128)}},
		{tc.MatchAll{Parent: "ingress", Protocol: "all", Prio: 1, Actions: tc.ActionList{tc.Gact{Verdict: "pass"}}},
			&netlink.MatchAll{FilterAttrs: netlink.FilterAttrs{LinkIndex: 2, Parent: tc.HandleClsactIngress, Priority: 1, Protocol: unix.ETH_P_ALL},
				Actions: []netlink.Action{&netlink.GenericAction{}}}},
	}
	for _, c := range cases {
		got, err := Filter(c.spec, 2, testIndex)
		require.NoError(t, err, "%#v", c.spec)
		assert.Equal(t, c.want, got, "%#v", c.spec)
		assert.Equal(t, c.spec.Kind(), got.Type())
	}
	_, err := Filter(tc.U32{Parent: "ingress", Prio: 1, Actions: tc.ActionList{tc.Mirred{Dev: "nothere"}}}, 2, testIndex)
	assert.ErrorContains(t, err, `u32 Actions[0]: mirred Dev: resolve "nothere": no device "nothere"`)
	_, err = Filter(tc.U32{Parent: "1:"}, 2, testIndex)
	assert.ErrorContains(t, err, "u32 Prio")
}

func TestActions(t *testing.T) {
	got, err := Actions("u32", tc.ActionList{
		tc.Gact{Verdict: "reclassify"},
		tc.Mirred{Dev: "ifb0", Mirror: true},
		tc.Mirred{Dev: "ifb0", Ingress: true},
		tc.Police{Rate: 8 * tc.Mbit, Burst: 10000, Exceed: "pipe", Conform: "continue"},
		tc.SkbEdit{Mark: ptr(uint32(5)), Priority: "1:10", QueueMapping: ptr(3)},
	}, testIndex)
	require.NoError(t, err)
	police := netlink.NewPoliceAction()
	police.Rate, police.Burst, police.ExceedAction, police.NotExceedAction = 1e6, 10000, netlink.TC_POLICE_PIPE, netlink.TC_POLICE_UNSPEC
	skb := netlink.NewSkbEditAction()
	skb.Mark, skb.Priority, skb.QueueMapping = ptr(uint32(5)), ptr(uint32(0x10010)), ptr(uint16(3))
	assert.Equal(t, []netlink.Action{
		&netlink.GenericAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_RECLASSIFY}},
		&netlink.MirredAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_PIPE}, MirredAction: netlink.TCA_EGRESS_MIRROR, Ifindex: 7},
		&netlink.MirredAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_STOLEN}, MirredAction: netlink.TCA_INGRESS_REDIR, Ifindex: 7},
		police, skb,
	}, got)
}

// TestActionBytes checks the attributes netlink writes for the actions,
// as the kernel reads them: the kind, and the verdict and device in the
// parameters.
func TestActionBytes(t *testing.T) {
	acts, err := Actions("u32", tc.ActionList{tc.Gact{Verdict: "drop"}, tc.Mirred{Dev: "ifb0", Mirror: true}}, testIndex)
	require.NoError(t, err)
	top := nl.NewRtAttr(nl.TCA_ACT_TAB, nil)
	require.NoError(t, netlink.EncodeActions(top, acts))
	tab, err := nl.ParseRouteAttr(top.Serialize()[unix.SizeofRtAttr:])
	require.NoError(t, err)
	require.Len(t, tab, 2)
	kinds := []string{}
	for i, a := range tab {
		assert.Equal(t, uint16(i+1), a.Attr.Type, "actions are numbered from 1 in order")
		attrs, err := nl.ParseRouteAttr(a.Value)
		require.NoError(t, err)
		for _, at := range attrs {
			switch at.Attr.Type {
			case nl.TCA_ACT_KIND:
				kinds = append(kinds, string(at.Value[:len(at.Value)-1]))
			case nl.TCA_ACT_OPTIONS:
				opts, err := nl.ParseRouteAttr(at.Value)
				require.NoError(t, err)
				require.NotEmpty(t, opts)
				// tc_gen: index, capab, action, refcnt, bindcnt.
				action := int32(binary.NativeEndian.Uint32(opts[0].Value[8:12]))
				if i == 0 {
					assert.Equal(t, uint16(nl.TCA_GACT_PARMS), opts[0].Attr.Type)
					assert.Equal(t, int32(netlink.TC_ACT_SHOT), action)
					continue
				}
				assert.Equal(t, uint16(nl.TCA_MIRRED_PARMS), opts[0].Attr.Type)
				assert.Equal(t, int32(netlink.TC_ACT_PIPE), action)
				// tc_mirred: tc_gen (20 bytes), eaction, ifindex.
				assert.Equal(t, uint32(netlink.TCA_EGRESS_MIRROR), binary.NativeEndian.Uint32(opts[0].Value[20:24]))
				assert.Equal(t, uint32(7), binary.NativeEndian.Uint32(opts[0].Value[24:28]))
			}
		}
	}
	assert.Equal(t, []string{"gact", "mirred"}, kinds)
}
