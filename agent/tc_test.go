package agent

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

func testTcRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root: it makes namespace hosts")
	}
}

func tcQdiscReq(t *testing.T, g string, q tc.Qdisc) *pb.TcQdiscRequest {
	kind, data, err := tc.MarshalQdisc(q)
	require.NoError(t, err)
	return &pb.TcQdiscRequest{Host: "h1", Group: g, Dev: "v0", Kind: kind, Spec: data}
}

func tcFilterReq(t *testing.T, g string, f tc.Filter) *pb.TcFilterRequest {
	kind, data, err := tc.MarshalFilter(f)
	require.NoError(t, err)
	return &pb.TcFilterRequest{Host: "h1", Group: g, Dev: "v0", Kind: kind, Spec: data}
}

// TestTcQdiscRestored adds, replaces and deletes qdiscs: Restore brings
// back what the device had, the kernel's default or a qdisc made by hand
// with its options, also when the replacement has the same handle.
func TestTcQdiscRestored(t *testing.T) {
	testTcRoot(t)
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	show := func() string { return testSh(t, c, "h1", "tc qdisc show dev v0") }
	// The kernel sets a transmit queue length of 0 to 1000 when a qdisc
	// is attached; the undo sets it back.
	testSh(t, c, "h1", "ip link set v0 txqueuelen 0")
	qlen := func() string { return testSh(t, c, "h1", "cat /sys/class/net/v0/tx_queue_len") }
	before := show()
	require.Contains(t, before, "noqueue")

	_, err := c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Tbf{Handle: "1:", Rate: 8 * tc.Mbit, Burst: 10000, Latency: 50 * time.Millisecond}))
	require.NoError(t, err)
	_, err = c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Ingress{}))
	require.NoError(t, err)
	out := show()
	assert.Contains(t, out, "qdisc tbf 1: root")
	assert.Contains(t, out, "rate 8Mbit")
	assert.Contains(t, out, "qdisc ingress ffff:")
	// A second root qdisc is refused: add does not replace.
	_, err = c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Htb{Handle: "2:"}))
	testCode(t, err, codes.Aborted, "add qdisc htb at root", `"v0"`)
	_, err = c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Tbf{}))
	testCode(t, err, codes.InvalidArgument, "tbf Rate")

	l, err := c.TcList(ctx, &pb.TcListRequest{Host: "h1", Dev: "v0"})
	require.NoError(t, err)
	var kinds []string
	for _, q := range l.Qdiscs {
		kinds = append(kinds, q.Kind+" "+q.Parent+" "+q.Handle)
	}
	assert.ElementsMatch(t, []string{"tbf root 1:", "ingress ingress ffff:"}, kinds)

	assert.Equal(t, "1000\n", qlen())
	testRestoreClean(t, c, &log, "g", 2)
	assert.Equal(t, before, show())
	assert.Equal(t, "0\n", qlen())

	// By hand: a tbf 1: of 2mbit. Replacing it with an htb 1: and
	// deleting that, then restoring, brings the tbf back as it was.
	testSh(t, c, "h1", "tc qdisc add dev v0 root handle 1: tbf rate 2mbit burst 5k latency 20ms")
	handMade := show()
	_, err = c.TcReplaceQdisc(ctx, tcQdiscReq(t, "g2", tc.Htb{Handle: "1:"}))
	require.NoError(t, err)
	assert.Contains(t, show(), "qdisc htb 1: root")
	testRestoreClean(t, c, &log, "g2", 1)
	assert.Equal(t, handMade, show())

	_, err = c.TcDelQdisc(ctx, &pb.TcQdiscRequest{Host: "h1", Group: "g3", Dev: "v0", Parent: "root"})
	require.NoError(t, err)
	assert.Equal(t, before, show())
	_, err = c.TcDelQdisc(ctx, &pb.TcQdiscRequest{Host: "h1", Group: "g3", Dev: "v0", Parent: "root"})
	testCode(t, err, codes.InvalidArgument, "no qdisc there but the kernel's default")
	testRestoreClean(t, c, &log, "g3", 1)
	assert.Equal(t, handMade, show())

	// An ingress qdisc made by hand comes back after a clsact replaced it.
	testSh(t, c, "h1", "tc qdisc add dev v0 ingress")
	withIngress := show()
	_, err = c.TcReplaceQdisc(ctx, tcQdiscReq(t, "g5", tc.Clsact{}))
	require.NoError(t, err)
	assert.Contains(t, show(), "qdisc clsact ffff:")
	testRestoreClean(t, c, &log, "g5", 1)
	assert.Equal(t, withIngress, show())
	testSh(t, c, "h1", "tc qdisc del dev v0 ingress")

	// A qdisc deleted by hand: its undo finds nothing to do.
	_, err = c.TcAddQdisc(ctx, tcQdiscReq(t, "g4", tc.Clsact{}))
	require.NoError(t, err)
	testSh(t, c, "h1", "tc qdisc del dev v0 clsact")
	testRestoreClean(t, c, &log, "g4", 1, "clsact")
}

// TestTcClassesFilters shapes with htb classes and u32 filters, reads
// them back with their counters, and restores: what was added goes, what
// was deleted comes back.
func TestTcClassesFilters(t *testing.T) {
	testTcRoot(t)
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	testSh(t, c, "h1", "ip addr add 198.18.40.1/24 dev v0 && ip link add ifb9 type ifb && ip link set ifb9 up")
	_, err := c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Htb{Handle: "1:", Default: "1:20"}))
	require.NoError(t, err)
	for _, cl := range []tc.HtbClass{
		{Parent: "1:", ClassID: "1:10", Rate: 8 * tc.Mbit},
		{Parent: "1:", ClassID: "1:20", Rate: 2 * tc.Mbit, Ceil: 4 * tc.Mbit},
	} {
		kind, data, err := tc.MarshalClass(cl)
		require.NoError(t, err)
		_, err = c.TcAddClass(ctx, &pb.TcClassRequest{Host: "h1", Group: "g", Dev: "v0", Kind: kind, Spec: data})
		require.NoError(t, err)
	}
	_, err = c.TcAddFilter(ctx, tcFilterReq(t, "g", tc.U32{Parent: "1:", Protocol: "ip", Prio: 1, ClassID: "1:10", Dst: "198.18.40.2"}))
	require.NoError(t, err)
	_, err = c.TcAddFilter(ctx, tcFilterReq(t, "g", tc.U32{Parent: "1:", Protocol: "ip", Prio: 1, ClassID: "1:20"}))
	testCode(t, err, codes.InvalidArgument, "filters of priority 1 already")
	_, err = c.TcAddQdisc(ctx, tcQdiscReq(t, "g", tc.Ingress{}))
	require.NoError(t, err)
	_, err = c.TcAddFilter(ctx, tcFilterReq(t, "g", tc.U32{Parent: "ingress", Prio: 2, Actions: tc.ActionList{tc.Mirred{Dev: "ifb9", Mirror: true}}}))
	require.NoError(t, err)
	_, err = c.TcAddFilter(ctx, tcFilterReq(t, "g", tc.U32{Parent: "ingress", Prio: 3, Actions: tc.ActionList{tc.Mirred{Dev: "nosuch"}}}))
	testCode(t, err, codes.InvalidArgument, `resolve "nosuch"`)
	assert.Contains(t, testSh(t, c, "h1", "tc filter show dev v0 parent 1:"), "match c6122802/ffffffff at 16")

	// Traffic to 198.18.40.2 goes through class 1:10.
	testSh(t, c, "h1", "ip neigh add 198.18.40.2 lladdr 02:00:00:00:40:02 dev v0 && ping -c 3 -i 0.01 -W 0.01 198.18.40.2 >/dev/null || true")
	l, err := c.TcList(ctx, &pb.TcListRequest{Host: "h1", Dev: "v0"})
	require.NoError(t, err)
	classes := map[string]*pb.TcClass{}
	for _, cl := range l.Classes {
		classes[cl.ClassId] = cl
	}
	require.Contains(t, classes, "1:10")
	assert.Equal(t, uint64(8*tc.Mbit), classes["1:10"].Rate)
	assert.Equal(t, uint64(4*tc.Mbit), classes["1:20"].Ceil)
	assert.Equal(t, uint64(3), classes["1:10"].Stats.Packets, "the pings went through class 1:10")
	require.Len(t, l.Filters, 2)
	var u32, mirred *pb.TcFilter
	for _, f := range l.Filters {
		switch f.Parent {
		case "1:":
			u32 = f
		case "ingress":
			mirred = f
		}
	}
	require.NotNil(t, u32)
	assert.Equal(t, "1:10", u32.ClassId)
	assert.Equal(t, uint32(1), u32.Prio)
	assert.Equal(t, uint32(0x0800), u32.Protocol)
	require.NotNil(t, mirred)
	require.Len(t, mirred.Actions, 1)
	assert.Equal(t, "mirred", mirred.Actions[0].Kind)

	testRestoreClean(t, c, &log, "g", 6)
	assert.Contains(t, testSh(t, c, "h1", "tc qdisc show dev v0"), "noqueue")
	assert.NotContains(t, testSh(t, c, "h1", "tc qdisc show dev v0"), "ingress")

	// By hand: htb, a class 1:20 of 3mbit and a u32 filter; deleting
	// them through the agent and restoring brings them back.
	testSh(t, c, "h1", "tc qdisc add dev v0 root handle 1: htb && tc class add dev v0 parent 1: classid 1:20 htb rate 3mbit && "+
		"tc filter add dev v0 parent 1: protocol ip prio 5 u32 match ip dport 5201 0xffff classid 1:20")
	classesBefore := testSh(t, c, "h1", "tc class show dev v0")
	filtersBefore := testSh(t, c, "h1", "tc filter show dev v0 parent 1:")
	_, err = c.TcDelFilter(ctx, &pb.TcFilterRequest{Host: "h1", Group: "g2", Dev: "v0", Parent: "1:", Protocol: "ip", Prio: 5})
	require.NoError(t, err)
	_, err = c.TcDelClass(ctx, &pb.TcClassRequest{Host: "h1", Group: "g2", Dev: "v0", ClassId: "1:20"})
	require.NoError(t, err)
	assert.Empty(t, testSh(t, c, "h1", "tc class show dev v0"))
	assert.Empty(t, testSh(t, c, "h1", "tc filter show dev v0 parent 1:"))
	_, err = c.TcDelClass(ctx, &pb.TcClassRequest{Host: "h1", Group: "g2", Dev: "v0", ClassId: "1:20"})
	testCode(t, err, codes.InvalidArgument, "no such class")
	testRestoreClean(t, c, &log, "g2", 2)
	assert.Equal(t, classesBefore, testSh(t, c, "h1", "tc class show dev v0"))
	// The kernel picks the hash table and handle of the key put back.
	assert.Equal(t, filterKey(filtersBefore), filterKey(testSh(t, c, "h1", "tc filter show dev v0 parent 1:")))
}

// TestTcUndoJournaled checks that a traffic control undo survives the
// journal's encoding (as a crashed agent's successor reads it) and
// applies from it: the qdisc dumped before comes back with its options.
func TestTcUndoJournaled(t *testing.T) {
	testTcRoot(t)
	var log testLog
	srv, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	testSh(t, c, "h1", "tc qdisc add dev v0 root handle 3: tbf rate 3mbit burst 4k limit 9000")
	handMade := testSh(t, c, "h1", "tc qdisc show dev v0")
	_, err := c.TcReplaceQdisc(ctx, tcQdiscReq(t, "g", tc.Htb{Handle: "1:"}))
	require.NoError(t, err)
	taken := srv.journal.take("g", 0, false)
	require.Len(t, taken, 1)
	b, err := encodeRecord(journalRecord{Op: "add", Entry: &taken[0]})
	require.NoError(t, err)
	d, err := decodeJournal("tc.journal", append(journalHeader(), b...), false)
	require.NoError(t, err)
	require.Len(t, d.records, 1)
	back := *d.records[0].Entry
	assert.Equal(t, opTcPutQdisc, back.Op)
	require.Len(t, back.Tc, 1)
	assert.Equal(t, "tbf", back.Tc[0].Kind)
	assert.NotEmpty(t, back.Tc[0].Options)
	assert.Contains(t, back.String(), "put qdisc back [tbf 3: parent root] on v0")
	require.NoError(t, srv.apply(back))
	assert.Equal(t, handMade, testSh(t, c, "h1", "tc qdisc show dev v0"))
	// Applied twice (a crash before its done record): the same state.
	require.NoError(t, srv.apply(back))
	assert.Equal(t, handMade, testSh(t, c, "h1", "tc qdisc show dev v0"))
}

// filterKey is what tc filter show says of a u32 key but its handles.
func filterKey(show string) string {
	var out []string
	for _, l := range strings.Split(show, "\n") {
		if i := strings.Index(l, "flowid"); i >= 0 {
			out = append(out, l[i:])
		}
		if strings.Contains(l, "match") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}

// TestTcSaveResetQdiscs saves a device's qdiscs, changes them by hand as a
// recipe's raw tc command would, and resets them: the saved ones are back,
// and a reset of a device as saved changes nothing.
func TestTcSaveResetQdiscs(t *testing.T) {
	testTcRoot(t)
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	testSh(t, c, "h1", "ip link set v0 txqueuelen 0 && tc qdisc add dev v0 root handle 4: tbf rate 4mbit burst 4k latency 10ms && ip link set v0 txqueuelen 0")
	saved := testSh(t, c, "h1", "tc qdisc show dev v0")
	st, err := c.TcSaveQdiscs(ctx, &pb.TcListRequest{Host: "h1", Dev: "v0"})
	require.NoError(t, err)

	r, err := c.TcResetQdiscs(ctx, &pb.TcResetRequest{Host: "h1", Dev: "v0", State: st.State})
	require.NoError(t, err)
	assert.Empty(t, r.Changed, "the device is as saved")

	testSh(t, c, "h1", "tc qdisc replace dev v0 root handle 5: htb && tc qdisc add dev v0 clsact")
	r, err = c.TcResetQdiscs(ctx, &pb.TcResetRequest{Host: "h1", Dev: "v0", State: st.State})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"root: tbf 4: put back in place of htb 5:",
		"ingress: the kernel's default put back in place of clsact ffff:",
		"transmit queue length 0 put back in place of 1000",
	}, r.Changed)
	assert.Equal(t, saved, testSh(t, c, "h1", "tc qdisc show dev v0"))

	_, err = c.TcResetQdiscs(ctx, &pb.TcResetRequest{Host: "h1", Dev: "v0", State: []byte("{")})
	testCode(t, err, codes.InvalidArgument, "the saved state")
}
