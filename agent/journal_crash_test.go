package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// journalCrashEnv makes TestJournalGroupCommitCrash's binary a child:
// "crash" makes changes and waits to be killed, "recover" starts an agent
// on the journal the killed one left. journalCrashPathEnv is the journal.
const (
	journalCrashEnv     = "LNST_TEST_JOURNAL_CRASH"
	journalCrashPathEnv = "LNST_TEST_JOURNAL_CRASH_PATH"
)

// The crash child's work: journalCrashBatches AddRoutes calls of
// journalCrashBatch routes each on lo, then a Restore of all but the first
// batch, whose done records go in one group commit.
const (
	journalCrashBatch   = 1000
	journalCrashBatches = 3
)

func journalCrashDst(i int) string { return fmt.Sprintf("198.19.%d.%d/32", i/256, i%256) }

// TestJournalGroupCommitCrash kills (SIGKILL) an agent whose own host is
// a throwaway namespace, after it added routes in batches and restored
// some of them (their done records group-committed), and checks that the
// journal it left holds exactly the changes still in place, and that the
// next agent on that journal takes all of them back.
func TestJournalGroupCommitCrash(t *testing.T) {
	switch os.Getenv(journalCrashEnv) {
	case "crash":
		journalCrashChild(t, os.Getenv(journalCrashPathEnv))
		return
	case "recover":
		journalRecoverChild(t, os.Getenv(journalCrashPathEnv))
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the agents run in a namespace made with ip netns")
	}
	ns := fmt.Sprintf("lnsttest-jcrash-%d", os.Getpid())
	out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "ip netns add %s: %s", ns, out)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	nsh, err := netns.GetFromName(ns)
	require.NoError(t, err)
	t.Cleanup(func() { nsh.Close() })
	nl, err := netlink.NewHandleAt(nsh)
	require.NoError(t, err)
	t.Cleanup(nl.Close)
	path := testJournalPath(t)
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestJournalGroupCommitCrash$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), journalCrashEnv+"="+mode, journalCrashPathEnv+"="+path)
		cmd.Stderr = os.Stderr
		return cmd
	}

	// The crash: killed once its Restore has returned.
	cmd := child("crash")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	ready := false
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "READY" {
			ready = true
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	require.True(t, ready, "the crash child did not get ready:\n%s", strings.Join(lines, "\n"))

	left := journalCrashRoutes(t, nl)
	assert.Len(t, left, journalCrashBatch, "routes in place after the crash")
	for i := range journalCrashBatch {
		assert.True(t, left[journalCrashDst(i)], "route %s of the first batch is gone", journalCrashDst(i))
	}
	jf, o := testOpenJournal(t, path, false)
	assert.Empty(t, o.torn, "a SIGKILL after the sync leaves no torn tail")
	var routes, other int
	for _, u := range o.left {
		if u.Op == opDelRoute {
			assert.True(t, left[u.Route.Dst], "the journal would remove route %s, which is not in place", u.Route.Dst)
			routes++
		} else {
			other++
		}
	}
	assert.Equal(t, journalCrashBatch, routes, "route entries left in the journal: the restored routes' done records are on disk")
	assert.Equal(t, 2, other, "lo's address and lo up")
	require.NoError(t, jf.close())

	// The next agent takes back what the journal holds.
	cmd = child("recover")
	rec, err := cmd.Output()
	require.NoError(t, err, "recover child:\n%s", rec)
	assert.Contains(t, string(rec), fmt.Sprintf("entries=%d", journalCrashBatch+2), "recover child:\n%s", rec)
	assert.Empty(t, journalCrashRoutes(t, nl), "routes left after the recovery")
	lo, err := nl.LinkByName("lo")
	require.NoError(t, err)
	addrs, err := nl.AddrList(lo, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, a := range addrs {
		assert.NotEqual(t, "198.18.201.1/24", a.IPNet.String(), "lo's address is left")
	}
	assert.Equal(t, int64(journalHeaderLen), testFileSize(t, path), "the journal is compacted")
}

// journalCrashRoutes returns the destinations of the routes on lo in the
// namespace of nl that the crash child adds.
func journalCrashRoutes(t *testing.T, nl *netlink.Handle) map[string]bool {
	t.Helper()
	lo, err := nl.LinkByName("lo")
	require.NoError(t, err)
	rs, err := nl.RouteList(lo, netlink.FAMILY_V4)
	require.NoError(t, err)
	_, ours, _ := net.ParseCIDR("198.19.0.0/16")
	m := map[string]bool{}
	for _, r := range rs {
		if r.Dst != nil && ours.Contains(r.Dst.IP) {
			m[r.Dst.String()] = true
		}
	}
	return m
}

// journalCrashChild makes the changes on its own host (the namespace it
// runs in), prints READY and waits to be killed.
func journalCrashChild(t *testing.T, path string) {
	srv, err := NewServer(Options{JournalPath: path})
	require.NoError(t, err)
	ctx := context.Background()
	up := true
	_, err = srv.SetLink(ctx, &pb.SetLinkRequest{Group: "base", Name: "lo", Up: &up})
	require.NoError(t, err)
	_, err = srv.AddAddr(ctx, &pb.AddrRequest{Group: "base", Name: "lo", Cidr: "198.18.201.1/24"})
	require.NoError(t, err)
	var second uint64
	for b := range journalCrashBatches {
		req := &pb.RoutesRequest{Group: "routes"}
		for i := b * journalCrashBatch; i < (b+1)*journalCrashBatch; i++ {
			req.Routes = append(req.Routes, &pb.RouteRequest{Dst: journalCrashDst(i), Dev: "lo"})
		}
		r, err := srv.AddRoutes(ctx, req)
		require.NoError(t, err)
		if b == 1 {
			second = r.Seq
		}
	}
	r, err := srv.Restore(ctx, &pb.RestoreRequest{Group: "routes", Since: second})
	require.NoError(t, err)
	require.Empty(t, r.Errors)
	require.Equal(t, int32((journalCrashBatches-1)*journalCrashBatch), r.Undone)
	fmt.Println("READY")
	select {}
}

// journalRecoverChild starts an agent on the journal, which takes back
// what the crashed one left, logging to stdout.
func journalRecoverChild(t *testing.T, path string) {
	log := hclog.New(&hclog.LoggerOptions{Output: os.Stdout, Level: hclog.Info})
	srv, err := NewServer(Options{JournalPath: path, Logger: log})
	require.NoError(t, err)
	for _, err := range srv.Shutdown() {
		t.Error(err)
	}
}
