package kernlog

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// records makes one record per line of text, numbered from 1.
func records(text string) []Record {
	var rs []Record
	for i, l := range strings.Split(strings.Trim(text, "\n"), "\n") {
		rs = append(rs, Record{Seq: uint64(i + 1), Micros: int64(i), Text: l})
	}
	return rs
}

// Splats as kernels print them (from kernel bug reports and syzbot).
const (
	warnNetdev = `------------[ cut here ]------------
WARNING: CPU: 1 PID: 3721 at net/core/dev.c:10874 unregister_netdevice_many_notify+0x1cd/0x1e0
Modules linked in: veth bridge stp llc
CPU: 1 PID: 3721 Comm: ip Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:unregister_netdevice_many_notify+0x1cd/0x1e0
Call Trace:
 <TASK>
 rtnl_dellink+0x13d/0x3a0
 rtnetlink_rcv_msg+0x14b/0x3c0
 netlink_rcv_skb+0x51/0x100
 netlink_unicast+0x1f2/0x2f0
 netlink_sendmsg+0x250/0x4c0
 </TASK>
---[ end trace 0000000000000000 ]---
bridge0: port 1(veth0) entered disabled state`
	nullDeref = `BUG: kernel NULL pointer dereference, address: 0000000000000008
#PF: supervisor read access in kernel mode
#PF: error_code(0x0000) - not-present page
PGD 0 P4D 0
Oops: 0000 [#1] PREEMPT SMP NOPTI
CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.8.0 #1
RIP: 0010:br_fdb_update+0x20/0x1f0 [bridge]`
	kasan = `==================================================================
BUG: KASAN: slab-use-after-free in tcp_retransmit_timer+0x2a1c/0x3100
Read of size 8 at addr ffff88807d3f2218 by task syz-executor.0/5090

CPU: 0 PID: 5090 Comm: syz-executor.0 Not tainted 6.9.0-rc4-syzkaller #0`
	kcsan = `==================================================================
BUG: KCSAN: data-race in dev_queue_xmit / netif_receive_skb

write to 0xffff888104a4f0f0 of 8 bytes by task 3148 on cpu 1:`
	ubsan = `================================================================================
UBSAN: array-index-out-of-bounds in net/sched/sch_taprio.c:1175:27
index 16 is out of range for type 'u32 [16]'
CPU: 1 PID: 5103 Comm: syz-executor374 Not tainted 6.7.0-syzkaller #0`
	lockdep = `======================================================
WARNING: possible circular locking dependency detected
6.6.0-rc2-syzkaller #0 Not tainted
------------------------------------------------------
kworker/u4:5/1234 is trying to acquire lock:
ffffffff8e5c4368 (rtnl_mutex){+.+.}-{3:3}, at: rtnl_lock+0x17/0x20`
	inconsistent = `================================
WARNING: inconsistent lock state
6.1.0 #1 Not tainted
--------------------------------
inconsistent {SOFTIRQ-ON-W} -> {IN-SOFTIRQ-W} usage.`
	rcuStall = `rcu: INFO: rcu_sched self-detected stall on CPU
rcu: 	0-....: (5249 ticks this GP) idle=c6c/1/0x4000000000000002 softirq=1452/1452 fqs=2624
	(t=5250 jiffies g=2213 q=345 ncpus=2)
NMI backtrace for cpu 0`
	rcuOld     = `INFO: rcu_preempt detected stalls on CPUs/tasks:`
	softLockup = `watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:321]
Modules linked in: veth
CPU: 1 PID: 321 Comm: kworker/1:2 Tainted: G             L     6.1.0 #1`
	hardLockup = `NMI watchdog: Watchdog detected hard LOCKUP on cpu 1
Modules linked in:
Kernel panic - not syncing: Hard LOCKUP`
	unregister = `unregister_netdevice: waiting for veth1 to become free. Usage count = 2`
	gpf        = `general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN
KASAN: null-ptr-deref in range [0x0000000000000008-0x000000000000000f]
CPU: 1 PID: 4466 Comm: syz-executor.4 Not tainted 6.2.0-rc1-syzkaller #0`
	kernelBug = `kernel BUG at net/core/skbuff.c:4219!
invalid opcode: 0000 [#1] PREEMPT SMP KASAN
RIP: 0010:skb_segment+0x3a8b/0x3ce0`
	hungTask = `INFO: task kworker/u4:1:27 blocked for more than 143 seconds.
      Not tainted 6.5.0 #1`
	clean = `IPv6: ADDRCONF(NETDEV_CHANGE): veth1: link becomes ready
bridge0: port 1(veth0) entered blocking state
bridge0: port 1(veth0) entered forwarding state
device veth0 entered promiscuous mode
NET: Registered PF_PACKET protocol family
lnst: not a WARNING: just text`
)

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		kinds      []string
		title      string // of the first splat
		lines      int    // of the first splat, 0: not checked
	}{
		{"warning", warnNetdev, []string{"warning"}, "WARNING: CPU: 1 PID: 3721 at net/core/dev.c:10874 unregister_netdevice_many_notify+0x1cd/0x1e0", 12},
		{"null deref with its oops", nullDeref, []string{"bug"}, "BUG: kernel NULL pointer dereference, address: 0000000000000008", 7},
		{"kasan", kasan, []string{"kasan"}, "BUG: KASAN: slab-use-after-free in tcp_retransmit_timer+0x2a1c/0x3100", 0},
		{"kcsan", kcsan, []string{"kcsan"}, "BUG: KCSAN: data-race in dev_queue_xmit / netif_receive_skb", 0},
		{"ubsan", ubsan, []string{"ubsan"}, "UBSAN: array-index-out-of-bounds in net/sched/sch_taprio.c:1175:27", 0},
		{"lockdep circular", lockdep, []string{"lockdep"}, "WARNING: possible circular locking dependency detected", 0},
		{"lockdep inconsistent", inconsistent, []string{"lockdep"}, "WARNING: inconsistent lock state", 0},
		{"rcu stall", rcuStall, []string{"rcu stall"}, "rcu: INFO: rcu_sched self-detected stall on CPU", 4},
		{"rcu stall, older kernels", rcuOld, []string{"rcu stall"}, rcuOld, 1},
		{"soft lockup", softLockup, []string{"soft lockup"}, "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:321]", 3},
		{"hard lockup and its panic", hardLockup, []string{"hard lockup"}, "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1", 3},
		{"unregister_netdevice", unregister, []string{"unregister_netdevice"}, unregister, 1},
		{"general protection fault", gpf, []string{"general protection fault"}, "general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN", 3},
		{"kernel BUG at", kernelBug, []string{"bug"}, "kernel BUG at net/core/skbuff.c:4219!", 3},
		{"hung task", hungTask, []string{"hung task"}, "INFO: task kworker/u4:1:27 blocked for more than 143 seconds.", 0},
		{"clean", clean, nil, "", 0},
		{"two warnings are two splats", warnNetdev + "\n" + warnNetdev, []string{"warning", "warning"}, "WARNING: CPU: 1 PID: 3721 at net/core/dev.c:10874 unregister_netdevice_many_notify+0x1cd/0x1e0", 0},
		{"a warning between clean lines", clean + "\n" + unregister + "\n" + clean, []string{"unregister_netdevice"}, unregister, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Find(records(tc.text))
			var kinds []string
			for _, s := range got {
				kinds = append(kinds, s.Kind)
			}
			require.Equal(t, tc.kinds, kinds)
			if len(got) == 0 {
				return
			}
			assert.Equal(t, tc.title, got[0].Title())
			if tc.lines > 0 {
				assert.Len(t, got[0].Lines, tc.lines, "lines:\n%s", got[0])
			}
		})
	}
}

func TestFindKeepsMaxLines(t *testing.T) {
	text := "WARNING: CPU: 0 PID: 1 at net/x.c:1 f+0x1/0x2\n" + strings.Repeat(" frame+0x1/0x2\n", 40) + "---[ end trace 0 ]---\nWARNING: CPU: 0 PID: 1 at net/y.c:1 g+0x1/0x2"
	got := Find(records(text))
	require.Len(t, got, 2)
	assert.Len(t, got[0].Lines, MaxLines)
	assert.Equal(t, uint64(1), got[0].Seq)
	assert.Equal(t, "WARNING: CPU: 0 PID: 1 at net/y.c:1 g+0x1/0x2", got[1].Title())
}

func TestParseKmsg(t *testing.T) {
	r, err := ParseKmsg([]byte("4,1234,5678901,-;WARNING: CPU: 0 PID: 1 at x\n SUBSYSTEM=net\n DEVICE=n2\n"))
	require.NoError(t, err)
	assert.Equal(t, Record{Seq: 1234, Level: 4, Micros: 5678901, Text: "WARNING: CPU: 0 PID: 1 at x"}, r)
	assert.Zero(t, r.Facility, "the kernel's own")
	// A facility above kern: the level is the low 3 bits.
	r, err = ParseKmsg([]byte("14,7,8,c,more;user text\n"))
	require.NoError(t, err)
	assert.Equal(t, 6, r.Level)
	assert.Equal(t, 1, r.Facility, "user")
	assert.Equal(t, "user text", r.Text)
	for _, bad := range []string{"", "no header", "4,x,5,-;m", "4,5;m"} {
		_, err := ParseKmsg([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}
