package lnsttest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/require"
)

// TestCleanCheckSees leaves on a lab host, one at a time, each kind of
// change the whole-run clean check must see (as a broken restore would
// leave it) and checks that the check names it, then that it passes once
// the change is taken back. It uses a clean check of its own, over this
// one host, so that the run's is not disturbed.
func TestCleanCheckSees(t *testing.T) {
	s := current()
	if s == nil || s.pool != nil {
		t.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	lab, err := s.labNow()
	if err != nil {
		t.Skipf("the lab is unavailable here: %v", err)
	}
	in, err := lab.Acquire(context.Background(), pool.Topology{Hosts: []pool.TopoHost{{Name: "h1", Ifaces: []pool.TopoIface{{Name: "eth0", Net: "n1"}}}}})
	require.NoError(t, err)
	t.Cleanup(func() { lab.Release(in) })
	id := in.Hosts["h1"]
	eth0 := in.Ifname("h1", "eth0")
	sh := func(cmd string) string {
		t.Helper()
		r, err := pb.RunJobWhole(context.Background(), lab.Client(), &pb.StartJobRequest{Host: id, Argv: []string{"sh", "-c", cmd}, Internal: true})
		require.NoError(t, err, cmd)
		require.Zero(t, r.ExitCode, "%s: %s", cmd, r.Stderr)
		return string(r.Stdout)
	}
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
	}{
		{"sysctl outside conf/", "echo reno > /proc/sys/net/ipv4/tcp_congestion_control",
			"echo " + strings.TrimSpace(sh("cat /proc/sys/net/ipv4/tcp_congestion_control")) + " > /proc/sys/net/ipv4/tcp_congestion_control",
			"/proc/sys/net/ipv4/tcp_congestion_control:reno"},
		{"ethtool feature", "ethtool -K " + eth0 + " tso off", "ethtool -K " + eth0 + " tso on",
			"ethtool-k " + eth0 + " tcp-segmentation-offload: off"},
		// A qdisc attached sets a transmit queue length of 0 to 1000.
		{"root qdisc", "tc qdisc add dev " + eth0 + " root handle 7: tbf rate 1mbit burst 4k latency 10ms",
			"tc qdisc del dev " + eth0 + " root && ip link set " + eth0 + " txqueuelen " + qlen, "+ qdisc tbf 7: dev " + eth0 + " root"},
		{"htb class", "tc qdisc add dev " + eth0 + " root handle 7: htb && tc class add dev " + eth0 + " parent 7: classid 7:10 htb rate 1mbit",
			"tc qdisc del dev " + eth0 + " root && ip link set " + eth0 + " txqueuelen " + qlen, "+ tc-class dev " + eth0 + " class htb 7:10"},
		{"ingress qdisc", "tc qdisc add dev " + eth0 + " ingress",
			"tc qdisc del dev " + eth0 + " ingress && ip link set " + eth0 + " txqueuelen " + qlen, "+ qdisc ingress ffff: dev " + eth0},
		{"ingress filter", "tc qdisc add dev " + eth0 + " ingress && tc filter add dev " + eth0 + " ingress protocol ip prio 3 u32 match ip dport 80 0xffff action mirred egress redirect dev lo",
			"tc qdisc del dev " + eth0 + " ingress && ip link set " + eth0 + " txqueuelen " + qlen, "+ tc-filter ingress dev " + eth0 + " filter protocol ip pref 3 u32"},
		{"nft table", "nft add table inet lnst_cc && nft add chain inet lnst_cc c && nft add rule inet lnst_cc c tcp dport 9 counter drop",
			"nft delete table inet lnst_cc", "+ nft \t\ttcp dport 9 counter drop"},
		{"mptcp endpoint", "ip mptcp endpoint add 198.18.99.1 id 9 signal", "ip mptcp endpoint delete id 9",
			"+ mptcp-endpoint 198.18.99.1 id 9 signal"},
		{"mptcp limits", "ip mptcp limits set subflows 7 add_addr_accepted 7",
			"ip mptcp limits set " + strings.TrimSpace(sh("ip mptcp limits show")),
			"+ mptcp-limits add_addr_accepted 7 subflows 7"},
		{"xfrm policy", "ip xfrm policy add src 198.18.99.0/24 dst 198.18.98.0/24 dir out tmpl src 198.18.97.1 dst 198.18.97.2 proto esp mode tunnel",
			"ip xfrm policy del src 198.18.99.0/24 dst 198.18.98.0/24 dir out",
			"xfrm-policy src 198.18.99.0/24 dst 198.18.98.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh(tc.change)
			err := check.checkClean()
			sh(tc.undo)
			require.ErrorContains(t, err, tc.want)
			require.NoError(t, check.checkClean(), "once taken back")
		})
	}

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
