package recipes

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// NIC tuning recipes (LNST's config mixins and SR-IOV recipes). On the
// namespace lab eth0 is a veth: it has rx/tx channels but no interrupts,
// RSS, ntuple filters or pause frames, so those parts skip naming what is
// missing. The VM lab's NICs are multiqueue virtio-net with RSS
// (-lnst.lab=vm): there ChannelsIrq and RssHash run whole. SR-IOV
// recipes map only onto pool interfaces that declare it (sriov: N,
// switchdev: true); no lab has them.

// nicTraffic sends 8 TCP streams from h1 to h2 for 2 s: flows enough
// that RSS spreads them over every queue.
func nicTraffic(t *testing.T, h1, h2 *lnsttest.Host, dst string) {
	t.Helper()
	srv := modules.Iperf3Server{Bind: dst}.Start(t, h2)
	res := modules.Iperf3Client{Server: dst, Duration: 2 * time.Second, Parallel: 8}.Run(t, h1)
	srv.Stop(t)
	require.Positive(t, res.BitsPerSecond, "h1 to h2 throughput")
}

// irqCounts reads each interrupt's count (summed over CPUs) from the
// host's /proc/interrupts, by number.
func irqCounts(t *testing.T, h *lnsttest.Host) map[int]uint64 {
	t.Helper()
	out := h.Output(t, "cat /proc/interrupts")
	counts := map[int]uint64{}
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		return counts
	}
	ncpu := len(strings.Fields(lines[0]))
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < ncpu+1 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
		if err != nil {
			continue
		}
		var sum uint64
		for _, c := range f[1 : ncpu+1] {
			v, _ := strconv.ParseUint(c, 10, 64)
			sum += v
		}
		counts[n] = sum
	}
	return counts
}

// TestChannelsIrq sets h2's eth0 to two queues (two combined channels on
// a NIC; rx and tx on a veth), pins each queue's interrupts to a CPU of
// its own, sends 8 flows from h1, and checks that every rx queue's
// interrupt counted packets; the test's end sets the channels and the
// affinities back.
func TestChannelsIrq(t *testing.T) {
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.40.1/24")
	eth0 := h2.Iface("eth0")
	eth0.AddIP(t, "198.18.40.2/24")
	before, max, ok := eth0.Channels(t)
	if !ok {
		t.Skip("h2's eth0 has no channels: not supported by its driver (capability: channels)")
	}
	want := map[string]uint32{}
	for _, k := range []string{"combined", "rx", "tx"} {
		if max[k] >= 2 {
			want[k] = 2
		}
	}
	if want["combined"] != 0 {
		want = map[string]uint32{"combined": 2}
	}
	if len(want) == 0 {
		t.Skipf("h2's eth0 has at most one queue of each kind (maximums %v)", max)
	}
	t.Run("set", func(t *testing.T) {
		eth0.SetChannels(t, want)
		got, _, _ := eth0.Channels(t)
		for k, v := range want {
			require.Equal(t, v, got[k], "channels %s", k)
		}
		irqs, online := eth0.IRQs(t)
		var rxIRQs []lnsttest.IRQ
		for _, i := range irqs {
			if i.Queue >= 0 && i.Queue < 2 && i.Kind != "tx" {
				rxIRQs = append(rxIRQs, i)
			}
		}
		if len(rxIRQs) == 0 {
			t.Skipf("h2's eth0 (channels %v) has no queue interrupts: a soft device; the VM lab's virtio-net has them (-lnst.lab=vm)", got)
		}
		set := eth0.PinIRQs(t, lnsttest.IRQPerQueue(online...))
		after, _ := eth0.IRQs(t)
		for _, i := range after {
			if v, ok := set[i.Num]; ok {
				require.Equal(t, v, i.Affinity, "interrupt %d (%s) pinned", i.Num, i.Name)
			}
		}
		c0 := irqCounts(t, h2)
		nicTraffic(t, h1, h2, "198.18.40.2")
		c1 := irqCounts(t, h2)
		for _, i := range rxIRQs {
			require.Greater(t, c1[i.Num], c0[i.Num], "rx queue %d's interrupt %d (%s) counted packets", i.Queue, i.Num, i.Name)
		}
	})
	got, _, _ := eth0.Channels(t)
	require.Equal(t, before, got, "h2's eth0 channels are set back")
}

// TestRssHash points every entry of h2's eth0 RSS table at queue 0 and
// checks that 8 flows raise only queue 0's interrupt; the test's end sets
// the table back.
func TestRssHash(t *testing.T) {
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.41.1/24")
	eth0 := h2.Iface("eth0")
	eth0.AddIP(t, "198.18.41.2/24")
	before, ok := eth0.RSS(t)
	if !ok {
		t.Skip("h2's eth0 has no RSS: not supported by its driver (capability: rss; the VM lab's virtio-net has it: -lnst.lab=vm)")
	}
	t.Logf("h2 eth0 RSS: %d entries, hfunc %q, key %d bytes", len(before.Indir), before.Hfunc, len(before.Key))
	t.Run("one-queue", func(t *testing.T) {
		_, max, _ := eth0.Channels(t)
		if max["combined"] >= 2 {
			eth0.SetChannels(t, map[string]uint32{"combined": 2})
		}
		eth0.SetRSS(t, lnsttest.RSSChange{Equal: 1})
		got, _ := eth0.RSS(t)
		for i, q := range got.Indir {
			require.Zero(t, q, "table entry %d", i)
		}
		irqs, _ := eth0.IRQs(t)
		c0 := irqCounts(t, h2)
		nicTraffic(t, h1, h2, "198.18.41.2")
		c1 := irqCounts(t, h2)
		for _, i := range irqs {
			if i.Kind != "rx" && i.Kind != "combined" || i.Queue < 0 {
				continue
			}
			moved := c1[i.Num] > c0[i.Num]
			if i.Queue == 0 {
				require.True(t, moved, "rx queue 0's interrupt %d (%s) counted packets", i.Num, i.Name)
			} else {
				require.False(t, moved, "rx queue %d's interrupt %d (%s) counted %d interrupts with every bucket on queue 0", i.Queue, i.Num, i.Name, c1[i.Num]-c0[i.Num])
			}
		}
	})
	after, _ := eth0.RSS(t)
	require.Equal(t, before, after, "h2's eth0 RSS is set back")
}

// TestNtupleSteer steers h1's iperf3 flow to rx queue 1 of h2's eth0 with
// an ntuple filter, which the test's end deletes.
func TestNtupleSteer(t *testing.T) {
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.42.1/24")
	eth0 := h2.Iface("eth0")
	eth0.AddIP(t, "198.18.42.2/24")
	_, err := eth0.TryAddNtuple(t, lnsttest.Ntuple{Flow: "tcp4", DstIP: "198.18.42.2", DstPort: modules.DefaultIperf3Port, Queue: 1})
	if errors.Is(err, lnsttest.ErrNotSupported) {
		t.Skipf("capability ntuple: %v", err)
	}
	require.NoError(t, err)
	nicTraffic(t, h1, h2, "198.18.42.2")
}

// TestPauseFrames turns rx and tx pause frames on for h2's eth0 (autoneg
// off), reads them back, and checks that traffic still flows; the test's
// end sets them back.
func TestPauseFrames(t *testing.T) {
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.43.1/24")
	eth0 := h2.Iface("eth0")
	eth0.AddIP(t, "198.18.43.2/24")
	before, ok := eth0.Pause(t)
	if !ok {
		t.Skip("capability pause: h2's eth0 has no pause frame settings: not supported by its driver")
	}
	t.Run("on", func(t *testing.T) {
		want := map[string]uint32{"autoneg": 0, "rx": 1, "tx": 1}
		if err := eth0.TrySetPause(t, want); errors.Is(err, lnsttest.ErrNotSupported) {
			t.Skipf("capability pause: %v", err)
		}
		got, _ := eth0.Pause(t)
		require.Equal(t, want, got)
		nicTraffic(t, h1, h2, "198.18.43.2")
	})
	after, _ := eth0.Pause(t)
	require.Equal(t, before, after, "h2's eth0 pause settings are set back")
}

// sriovHosts requires h1 with an SR-IOV interface eth0 (and switchdev,
// when asked) and h2 on its network: a pool interface that declares
// sriov: N (switchdev: true). Every lab skips, naming the capability.
func sriovHosts(t *testing.T, caps ...string) *lnsttest.Match {
	t.Helper()
	opts := []lnsttest.IfaceOpt{lnsttest.Net("n1")}
	for _, c := range caps {
		opts = append(opts, lnsttest.Capability(c))
	}
	return lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", opts...)),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
}

// TestSRIOVNetns makes two VFs on h1's eth0, gives each a MAC and trust,
// moves each into a namespace of its own, and pings between them (through
// the NIC's eswitch); the test's end moves them back, sets the VFs back
// and removes them.
func TestSRIOVNetns(t *testing.T) {
	m := sriovHosts(t, "sriov")
	h1 := m.Host("h1")
	pf := h1.Iface("eth0")
	pf.Up(t)
	pf.SetNumVFs(t, 2)
	vfs, _, _ := pf.VFs(t)
	require.Len(t, vfs, 2, "VFs of %s", pf.Name())
	trust := true
	addrs := []string{"198.18.44.1/24", "198.18.44.2/24"}
	var nss []*lnsttest.Host
	for i, vf := range vfs {
		pf.SetVF(t, vf.Index, lnsttest.VFChange{MAC: "02:00:00:00:44:0" + strconv.Itoa(i+1), Trust: &trust})
		require.NotEmpty(t, vf.Netdev, "VF %d of %s has a network device", vf.Index, pf.Name())
		ns := h1.Netns(t, "vf"+strconv.Itoa(i))
		nss = append(nss, ns)
		d := h1.Iface(vf.Netdev)
		d.SetNetns(t, ns)
		d.AddIP(t, addrs[i])
		d.Up(t)
	}
	res := modules.Ping{Dst: "198.18.44.2", Count: 5}.Run(t, nss[0])
	require.Zero(t, res.Lost, "VF 0 reaches VF 1")
}

// TestSRIOVSwitchdevTc puts h1's eth0 eswitch in switchdev mode with one
// VF, moves the VF into a namespace and, on the VF's representor's
// ingress (what the VF sends), adds a flower rule with skip_sw that drops
// ICMP to 198.18.45.2: only the NIC can run it. The rule must be in
// hardware (in_hw), the VF's pings must all be lost, and the action's
// hardware counters must count them. At the subtest's end the rule and
// the ingress qdisc go again; at the test's end the eswitch mode and the
// VFs.
//
// It needs a pool interface that declares sriov and switchdev (a NIC
// such as mlx5 or ice); every lab skips, naming the capability.
func TestSRIOVSwitchdevTc(t *testing.T) {
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.Kernel("ingress", "cls_flower", "act_gact"),
			lnsttest.IfaceReq("eth0", lnsttest.Net("n1"), lnsttest.Capability("sriov"), lnsttest.Capability("switchdev"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1 := m.Host("h1")
	pf := h1.Iface("eth0")
	pf.Up(t)
	pf.SetNumVFs(t, 1)
	pf.SetEswitch(t, "switchdev")
	rep := pf.Representor(t, 0)
	rep.Up(t)
	vfs, _, _ := pf.VFs(t)
	require.Len(t, vfs, 1, "VFs of %s", pf.Name())
	require.NotEmpty(t, vfs[0].Netdev, "VF 0 of %s has a network device", pf.Name())
	ns := h1.Netns(t, "vf0")
	vf := h1.Iface(vfs[0].Netdev)
	vf.SetNetns(t, ns)
	vf.AddIP(t, "198.18.45.1/24")
	vf.Up(t)
	// Nobody has 198.18.45.2: a static neighbour lets the VF send the
	// echo requests without ARP (which the rule does not match anyway).
	ns.AddNeigh(t, vf, "198.18.45.2", "02:00:00:00:45:02")

	t.Run("offload", func(t *testing.T) {
		rep.AddQdisc(t, tc.Ingress{})
		rep.AddFilter(t, tc.Flower{Parent: "ingress", Protocol: "ip", Prio: 1, IPProto: "icmp", Dst: "198.18.45.2",
			SkipSw: true, Actions: tc.ActionList{tc.Gact{Verdict: "drop"}}})
		fs := rep.Filters(t)
		require.Len(t, fs, 1, "filters on %s", rep.Name())
		f := fs[0]
		require.True(t, f.SkipSw, "the rule on %s keeps skip_sw", rep.Name())
		require.True(t, f.InHw, "the rule on %s is in hardware (in_hw); not_in_hw is %v", rep.Name(), f.NotInHw)
		t.Logf("rule on %s: in_hw, in_hw_count %d", rep.Name(), f.InHwCount)

		ping := modules.Ping{Dst: "198.18.45.2", Count: 5, Interval: 200 * time.Millisecond, Timeout: 2 * time.Second}.Run(t, ns)
		require.Zero(t, ping.Received, "nothing answers 198.18.45.2")
		require.Positive(t, ping.Sent)
		// Drivers keep hardware counters "delayed" (TCA_ACT_USED_HW_STATS):
		// mlx5 reads them from the NIC about once a second, so a dump
		// may lag. Read until they count every echo request, at most 10
		// times a second apart; the assertion is on the count.
		var act tc.ActionInfo
		for range 10 {
			fs = rep.Filters(t)
			require.Len(t, fs, 1)
			require.Len(t, fs[0].Actions, 1)
			act = fs[0].Actions[0]
			if act.HwStats.Packets >= uint64(ping.Sent) {
				break
			}
			time.Sleep(time.Second)
		}
		t.Logf("gact on %s: %+v, of them in hardware %+v (%s counters, in %d drivers)", rep.Name(), act.Stats, act.HwStats, act.UsedHwStats, act.InHwCount)
		require.Equal(t, "gact", act.Kind)
		require.GreaterOrEqual(t, act.HwStats.Packets, uint64(ping.Sent), "the NIC dropped every echo request the VF sent and counted it")
		require.GreaterOrEqual(t, act.Stats.Packets, act.HwStats.Packets, "the action's total counts the hardware's part")
	})
	require.Empty(t, rep.Filters(t), "the rule on %s is removed at the subtest's end", rep.Name())
	for _, q := range rep.Qdiscs(t) {
		require.NotEqual(t, "ingress", q.Kind, "the ingress qdisc on %s is removed at the subtest's end", rep.Name())
	}
}
