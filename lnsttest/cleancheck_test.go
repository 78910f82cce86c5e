package lnsttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCleanCheckSees leaves on a lab host, one at a time, each kind of
// change the whole-run clean check must see (as a broken restore would
// leave it) and checks that the check names it, then that it passes once
// the change is taken back. It uses a clean check of its own, over this
// one host, so that the run's is not disturbed.
func TestCleanCheckSees(t *testing.T) {
	lh := localLabHost(t)
	lab, in, id, eth0 := lh.lab, lh.in, lh.id, lh.eth0
	sh := func(cmd string) string { t.Helper(); return lh.sh(t, cmd) }
	qlen := strings.TrimSpace(sh("cat /sys/class/net/" + eth0 + "/tx_queue_len"))
	// The snapshot must not see eth0 still settling (carrier coming up,
	// its link-local address in duplicate address detection): it would
	// differ from every later one.
	WaitFor(t, "eth0 up with its link-local address out of DAD", 10*time.Second, func() bool {
		out := sh("ip -6 addr show dev " + eth0 + " scope link; ip link show dev " + eth0)
		return strings.Contains(out, "state UP") && strings.Contains(out, "inet6 fe80::") && !strings.Contains(out, "tentative")
	})
	check := &session{}
	require.NoError(t, check.snapInstance(lab, in))
	require.NoError(t, check.checkClean(), "the host is as the snapshot saw it")

	for _, tc := range []struct {
		name, change, undo, want string
		// re, when set, is what the error must match instead of want.
		re string
		// check, when set, is a change made after the snapshot of
		// change (taken as the clean state): the diff must show it alone.
		check string
		// skip, when set, is why the case is skipped if change fails.
		skip string
	}{
		{"sysctl outside conf/", "echo reno > /proc/sys/net/ipv4/tcp_congestion_control",
			"echo " + strings.TrimSpace(sh("cat /proc/sys/net/ipv4/tcp_congestion_control")) + " > /proc/sys/net/ipv4/tcp_congestion_control",
			"/proc/sys/net/ipv4/tcp_congestion_control:reno", "", "", ""},
		{"ethtool feature", "ethtool -K " + eth0 + " tso off", "ethtool -K " + eth0 + " tso on",
			"ethtool-k " + eth0 + " tx-tcp-segmentation: off", "", "", ""},
		// A qdisc attached sets a transmit queue length of 0 to 1000.
		{"root qdisc", "tc qdisc add dev " + eth0 + " root handle 7: tbf rate 1mbit burst 4k latency 10ms",
			"tc qdisc del dev " + eth0 + " root && ip link set " + eth0 + " txqueuelen " + qlen, "+ qdisc tbf 7: dev " + eth0 + " root", "", "", ""},
		{"htb class", "tc qdisc add dev " + eth0 + " root handle 7: htb && tc class add dev " + eth0 + " parent 7: classid 7:10 htb rate 1mbit",
			"tc qdisc del dev " + eth0 + " root && ip link set " + eth0 + " txqueuelen " + qlen, "+ tc-class dev " + eth0 + " class htb 7:10", "", "", ""},
		{"ingress qdisc", "tc qdisc add dev " + eth0 + " ingress",
			"tc qdisc del dev " + eth0 + " ingress && ip link set " + eth0 + " txqueuelen " + qlen, "+ qdisc ingress ffff: dev " + eth0, "", "", ""},
		{"ingress filter", "tc qdisc add dev " + eth0 + " ingress && tc filter add dev " + eth0 + " ingress protocol ip prio 3 u32 match ip dport 80 0xffff action mirred egress redirect dev lo",
			"tc qdisc del dev " + eth0 + " ingress && ip link set " + eth0 + " txqueuelen " + qlen, "+ tc-filter ingress dev " + eth0 + " filter protocol ip pref 3 u32", "", "", ""},
		// Each kind of state the snapshot covers, changed as a recipe's
		// broken restore would leave it: the test fails if the snapshot
		// drops one.
		{name: "link MTU", change: "ip link set " + eth0 + " mtu 1400", undo: "ip link set " + eth0 + " mtu 1500",
			re: `\+ link: ` + eth0 + `: .* mtu 1400`},
		{name: "link flags", change: "ip link set " + eth0 + " promisc on", undo: "ip link set " + eth0 + " promisc off",
			re: `\+ link: ` + eth0 + `: .* promiscuity 1`},
		{name: "link master", change: "ip link add snapbr type bridge && ip link set " + eth0 + " master snapbr", undo: "ip link del snapbr",
			re: `\+ link: ` + eth0 + `: .* master snapbr`},
		{name: "IPv4 address", change: "ip addr add 198.18.7.1/24 dev " + eth0, undo: "ip addr del 198.18.7.1/24 dev " + eth0,
			re: `\+ addr dev ` + eth0 + ` inet plen 24 .*198\.18\.7\.1`},
		{name: "IPv6 address", change: "ip -6 addr add 2001:db8:7::1/64 dev " + eth0 + " nodad", undo: "ip -6 addr del 2001:db8:7::1/64 dev " + eth0,
			re: `\+ addr dev ` + eth0 + ` inet6 plen 64 .*2001:db8:7::1`},
		{name: "IPv4 route in another table", change: "ip route add 198.18.8.0/24 dev " + eth0 + " table 100", undo: "ip route del 198.18.8.0/24 dev " + eth0 + " table 100",
			re: `\+ route inet table 100 .*198\.18\.8\.0 .*dev ` + eth0},
		{name: "IPv6 route in another table", change: "ip -6 route add 2001:db8:8::/64 dev " + eth0 + " table 101", undo: "ip -6 route del 2001:db8:8::/64 dev " + eth0 + " table 101",
			re: `\+ route inet6 table 101 .*2001:db8:8:: .*dev ` + eth0},
		{name: "IPv4 rule", change: "ip rule add pref 1234 table 100", undo: "ip rule del pref 1234", re: `\+ rule inet .* table 100 .*pref 1234`},
		{name: "IPv6 rule", change: "ip -6 rule add pref 1235 table 101", undo: "ip -6 rule del pref 1235", re: `\+ rule inet6 .* table 101 .*pref 1235`},
		{name: "permanent neighbour", change: "ip neigh add 198.18.7.2 lladdr 02:00:00:00:00:01 dev " + eth0 + " nud permanent",
			undo: "ip neigh del 198.18.7.2 dev " + eth0, re: `\+ neigh inet dev ` + eth0 + ` .*dst 198\.18\.7\.2 lladdr 02:00:00:00:00:01`},
		{name: "per-device sysctl", change: "echo 0 > /proc/sys/net/ipv6/conf/" + eth0 + "/autoconf", undo: "echo 1 > /proc/sys/net/ipv6/conf/" + eth0 + "/autoconf",
			want: "+ conf inet6 dev " + eth0 + " autoconf: 0"},
		{name: "RPS", change: "echo 1 > /sys/class/net/" + eth0 + "/queues/rx-0/rps_cpus", undo: "echo 0 > /sys/class/net/" + eth0 + "/queues/rx-0/rps_cpus",
			want: "+ /sys/class/net/" + eth0 + "/queues/rx-0/rps_cpus:1"},
		{name: "XPS", change: "echo 1 > /sys/class/net/" + eth0 + "/queues/tx-0/xps_cpus", undo: "echo 0 > /sys/class/net/" + eth0 + "/queues/tx-0/xps_cpus",
			want: "+ /sys/class/net/" + eth0 + "/queues/tx-0/xps_cpus:1"},
		// mq and its classes take no filters: the kernel says so, and the
		// snapshot goes on (a VM guest's multiqueue NIC has mq).
		{name: "mq qdisc", change: "ip link add snapa numtxqueues 2 type veth peer snapb numtxqueues 2 && ip link set snapa txqueuelen 1000 && tc qdisc add dev snapa root handle 9: mq",
			undo: "ip link del snapa", want: "+ qdisc mq 9: dev snapa root"},
		{name: "ethtool channels", change: "ethtool -L " + eth0 + " rx 2", undo: "ethtool -L " + eth0 + " rx 1", want: "+ ethtool-l " + eth0 + " rx: 2"},
		// The nftables, MPTCP and xfrm lines, each with what it holds.
		{name: "nft table", change: "nft add table inet lnst_cc && nft add chain inet lnst_cc c '{ type filter hook input priority 3; }' && nft add rule inet lnst_cc c tcp dport 9 counter drop",
			undo: "nft delete table inet lnst_cc",
			re:   `(?s)\+ nft table inet lnst_cc .*\+ nft chain inet lnst_cc c type filter hook 1 prio 3 .*\+ nft rule inet lnst_cc c: .*payload\{.*counter verdict\{"Kind":0`},
		// A rule added shows alone: the table's and chain's lines are as
		// they were, and so is a counter's line though traffic moved it.
		{name: "nft rule", change: "nft add table inet lnst_cc && nft add chain inet lnst_cc c '{ type filter hook output priority 0; }' && nft add rule inet lnst_cc c counter",
			undo:  "nft delete table inet lnst_cc",
			check: "ping -c 1 -W 1 127.0.0.1 >/dev/null && nft list chain inet lnst_cc c | grep -q 'counter packets [1-9]' && nft add rule inet lnst_cc c udp dport 7 accept",
			re:    `is not as the lab made it:\n\+ nft rule inet lnst_cc c: [^\n]*payload\{[^\n]*verdict\{"Kind":1[^\n]*$`},
		{name: "mptcp endpoint", change: "ip mptcp endpoint add 198.18.99.1 id 9 signal", undo: "ip mptcp endpoint delete id 9",
			want: "+ mptcp-endpoint 198.18.99.1 id 9 signal"},
		{name: "mptcp limits", change: "ip mptcp limits set subflows 7 add_addr_accepted 7",
			undo: "ip mptcp limits set " + strings.TrimSpace(sh("ip mptcp limits show")),
			want: "+ mptcp-limits add_addr_accepted 7 subflows 7"},
		{name: "xfrm policy", change: "ip xfrm policy add src 198.18.99.0/24 dst 198.18.98.0/24 dir out tmpl src 198.18.97.1 dst 198.18.97.2 proto esp mode tunnel",
			undo: "ip xfrm policy del src 198.18.99.0/24 dst 198.18.98.0/24 dir out",
			re:   `\+ xfrm-policy dir out src 198\.18\.99\.0/24 dst 198\.18\.98\.0/24 .*tmpl src 198\.18\.97\.1 dst 198\.18\.97\.2 proto 50 mode 1`},
		{name: "xfrm state", change: "ip xfrm state add src 198.18.97.1 dst 198.18.97.2 proto esp spi 0x1234 mode tunnel enc 'cbc(aes)' 0x000102030405060708090a0b0c0d0e0f auth 'hmac(sha256)' 0x000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f",
			undo: "ip xfrm state del src 198.18.97.1 dst 198.18.97.2 proto esp spi 0x1234",
			re:   `\+ xfrm-state src 198\.18\.97\.1 dst 198\.18\.97\.2 proto 50 spi 0x1234 mode 1 .*auth hmac\(sha256\) keylen 32 .*crypt cbc\(aes\) keylen 16`,
			skip: "the kernel makes no xfrm state here (no ESP, AH or IPComp: ip xfrm state add says \"Requested type not found\")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				r, err := pb.RunJobWhole(context.Background(), lab.Client(), &pb.StartJobRequest{Host: id, Argv: []string{"sh", "-c", tc.change}, Internal: true})
				require.NoError(t, err)
				if r.ExitCode != 0 {
					t.Skipf("%s: %s", tc.skip, r.Stderr)
				}
			} else {
				sh(tc.change)
			}
			c := check
			if tc.check != "" {
				// The change is the clean state of a check of its own.
				c = &session{}
				if err := c.snapInstance(lab, in); err != nil {
					sh(tc.undo)
					require.NoError(t, err)
				}
				sh(tc.check)
			}
			err := c.checkClean()
			sh(tc.undo)
			require.Error(t, err)
			if tc.re != "" {
				require.Regexp(t, tc.re, err.Error())
			} else {
				require.ErrorContains(t, err, tc.want)
			}
			require.NoError(t, check.checkClean(), "once taken back")
		})
	}

	// A lab interface's per-device sysctls come by netlink, not as files
	// (agent/snapconf.go): every one of them a write can change must show
	// in the diff, as a conf or neigh-parms line of the device or its file.
	t.Run("every per-device sysctl", func(t *testing.T) {
		var seen, refused []string
		for _, l := range strings.Split(strings.TrimSpace(sh("for f in /proc/sys/net/ipv4/conf/"+eth0+"/* /proc/sys/net/ipv6/conf/"+eth0+"/* /proc/sys/net/ipv4/neigh/"+eth0+"/* /proc/sys/net/ipv6/neigh/"+eth0+"/*; do echo \"$f $(cat $f 2>/dev/null)\"; done")), "\n") {
			f, v, _ := strings.Cut(l, " ")
			n, err := strconv.Atoi(v)
			// disable_ipv6 takes the link-local address away: its
			// return goes through detection, and the check sees the
			// address, not only the sysctl. stable_secret is left out.
			if err != nil || strings.HasSuffix(f, "/disable_ipv6") {
				refused = append(refused, f)
				continue
			}
			to := n + 1
			if n == 1 {
				to = 0
			}
			// A value at its top (an MTU, an id) takes one less.
			r, err := pb.RunJobWhole(context.Background(), lab.Client(), &pb.StartJobRequest{Host: id, Argv: []string{"sh", "-c", fmt.Sprintf("echo %d > %s || echo %d > %s", to, f, n-1, f)}, Internal: true})
			require.NoError(t, err)
			if r.ExitCode != 0 {
				refused = append(refused, f)
				continue
			}
			err = check.checkClean()
			sh(fmt.Sprintf("echo %d > %s", n, f))
			require.Error(t, err, f)
			require.Regexp(t, `(?m)^[+-] ((conf|neigh-parms) inet6? dev `+eth0+` |`+regexp.QuoteMeta(f)+`:)`, err.Error(), f)
			seen = append(seen, f)
		}
		t.Logf("%d per-device sysctls changed and seen; not changed: %v", len(seen), refused)
		require.Greater(t, len(seen), 100, "the lab interface has a hundred and more per-device sysctls")
		require.NoError(t, check.checkClean(), "once all are taken back")
	})

	// Interrupt affinities are the machine's: one is changed and put back
	// here only if some interrupt takes another CPU list.
	t.Run("IRQ affinity", func(t *testing.T) {
		found := strings.Fields(sh(`for f in /proc/irq/*/smp_affinity_list; do v=$(cat $f); [ "$v" = 0 ] && continue; if echo 0 > $f 2>/dev/null; then echo $f $v; break; fi; done`))
		if len(found) != 2 {
			t.Skip("no interrupt on this machine takes another CPU list (or it has one CPU)")
		}
		err := check.checkClean()
		sh("echo " + found[1] + " > " + found[0])
		require.ErrorContains(t, err, "+ "+found[0]+":0")
		require.NoError(t, check.checkClean(), "once taken back")
	})

	t.Run("files", func(t *testing.T) {
		h := &Host{client: lab.Client(), name: "h1", id: id}
		dir := t.TempDir() // the lab host shares this machine's filesystem
		created, replaced := filepath.Join(dir, "created"), filepath.Join(dir, "replaced")
		require.NoError(t, os.WriteFile(replaced, []byte("before"), 0o644))
		require.NoError(t, check.noteFile(h, created, "x", false))
		require.NoError(t, check.noteFile(h, dir, "replaced", false), "a put into the directory")
		require.NoError(t, check.checkClean())

		require.NoError(t, os.WriteFile(created, nil, 0o644))
		require.ErrorContains(t, check.checkClean(), created+", changed by PutFile or TempDir, is not as before")
		require.NoError(t, os.Remove(created))

		require.NoError(t, os.WriteFile(replaced, []byte("after!"), 0o644)) // same size
		require.ErrorContains(t, check.checkClean(), replaced+", changed by PutFile or TempDir, is not as before")
		require.NoError(t, os.WriteFile(replaced, []byte("before"), 0o644))
		require.NoError(t, check.checkClean())

		// A put into what an earlier put made: the earlier record is
		// what was there before.
		tree := filepath.Join(dir, "tree")
		require.NoError(t, check.noteFile(h, tree, "x", false))
		require.NoError(t, os.MkdirAll(filepath.Join(tree, "in"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(tree, "in", "a"), nil, 0o644))
		require.NoError(t, check.noteFile(h, filepath.Join(tree, "in"), "a", false))
		require.ErrorContains(t, check.checkClean(), tree+", changed by PutFile or TempDir, is not as before")
		require.NoError(t, os.RemoveAll(tree))
		require.NoError(t, check.checkClean(), "the tree gone, as it was before")
	})
}

// TestCleanCheckFallbacks checks that the lines SnapshotHosts writes about
// a fallback tunnel device (made in every namespace when a module loads)
// are dropped, and no others.
func TestCleanCheckFallbacks(t *testing.T) {
	snap := strings.Join([]string{
		"link: lo: index 1 type 772 flags 0x10049 mtu 65536",
		"link: gre0@NONE: index 3 type 778 flags 0x80 mtu 1476 kind gre",
		"link: eth0: index 2 type 1 flags 0x11043 mtu 1500 kind veth link 3",
		"addr dev gre0 inet6 plen 64 scope 253 ifa1 fe80::1 lft forever flags 0x80",
		"route inet6 table 255 type 5 proto 2 scope 0 dstlen 8 srclen 0 tos 0 flags 0x0 rta1 ff00:: metric 256 rta4 dev gre0 rta20=00",
		"ethtool-k gre0 rx-gro: on",
		"ethtool-k eth0 rx-gro: on",
		"qdisc noqueue 0: dev gre0 root opts ",
		"/sys/class/net/gre0/queues/rx-0/rps_cpus:0",
		"/proc/sys/net/ipv6/conf/gre0/mtu:1476",
		"/proc/sys/net/ipv6/conf/eth0/mtu:1500",
		"conf inet6 dev gre0 accept_dad: 1",
		"neigh-parms inet dev gre0 app_solicit: 0",
		"conf inet6 dev eth0 accept_dad: 1",
	}, "\n")
	require.Equal(t, strings.Join([]string{
		"link: lo: index 1 type 772 flags 0x10049 mtu 65536",
		"link: eth0: index 2 type 1 flags 0x11043 mtu 1500 kind veth link 3",
		"ethtool-k eth0 rx-gro: on",
		"/proc/sys/net/ipv6/conf/eth0/mtu:1500",
		"conf inet6 dev eth0 accept_dad: 1",
	}, "\n"), withoutFallbacks(snap))
}

// TestCleanCheckManyHosts snapshots a 100-host instance as Require does:
// the agent's replies for all its hosts do not fit one gRPC message, and
// each host's snapshot must be its own, in the order asked.
func TestCleanCheckManyHosts(t *testing.T) {
	s := current()
	if s == nil || s.pool != nil {
		t.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	if testing.Short() {
		t.Skip("builds 100 lab hosts; skipped under -short")
	}
	lab, err := s.labNow()
	if err != nil {
		t.Skipf("the lab is unavailable here: %v", err)
	}
	in, err := lab.Acquire(context.Background(), benchScaleTopo(100))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, lab.Destroy(in)) })
	var ids []string
	for _, id := range in.Hosts {
		ids = append(ids, id)
	}
	all, err := snapshotHosts(lab.Client(), ids)
	require.NoError(t, err)
	require.Len(t, all, len(ids))
	for _, j := range []int{0, snapBatch, len(ids) - 1} {
		one, err := snapshot(lab.Client(), ids[j])
		require.NoError(t, err)
		require.Empty(t, lineDiff(one, all[j]), "host %s", ids[j])
	}
}

// noSnapshotAgent is an agent from before SnapshotHosts.
type noSnapshotAgent struct{ pb.AgentClient }

func (noSnapshotAgent) SnapshotHosts(context.Context, *pb.SnapshotRequest, ...grpc.CallOption) (*pb.SnapshotReply, error) {
	return nil, status.Error(codes.Unimplemented, "unknown method SnapshotHosts")
}

// TestCleanCheckOlderAgent checks that an agent without SnapshotHosts
// gets the snapshot script, and that its snapshots still show a change.
func TestCleanCheckOlderAgent(t *testing.T) {
	lh := localLabHost(t)
	id, eth0 := lh.id, lh.eth0
	old := noSnapshotAgent{lh.lab.Client()}
	before, err := snapshotHosts(old, []string{id})
	require.NoError(t, err)
	require.Contains(t, before[0], ": "+eth0+"@", "ip -o link's line of the interface: the script ran")
	lh.sh(t, "ip route add 198.18.9.0/24 dev "+eth0+" table 102")
	after, err := snapshotHosts(old, []string{id})
	lh.sh(t, "ip route del 198.18.9.0/24 dev "+eth0+" table 102")
	require.NoError(t, err)
	require.Contains(t, lineDiff(before[0], after[0]), "+ 198.18.9.0/24 dev "+eth0+" table 102")
}
