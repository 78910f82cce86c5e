package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
)

func TestOvsVsctlArgs(t *testing.T) {
	argv, err := ovsAddBrArgs(devices.OvsBridge{Name: "ovsbr0"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ovs-vsctl", "--timeout=10", "add-br", "ovsbr0"}, argv)
	assert.Equal(t, []string{"ovs-vsctl", "--timeout=10", "--if-exists", "del-br", "ovsbr0"}, ovsDelBrArgs("ovsbr0"))
	for _, bad := range []string{"", "a/b", "much-too-long-name", "-x"} {
		_, err := ovsAddBrArgs(devices.OvsBridge{Name: bad})
		assert.Error(t, err, "name %q", bad)
	}
	assert.Equal(t, ovsKind, createUndoKind(devices.OvsBridge{Name: "ovsbr0"}))
	assert.Equal(t, "", createUndoKind(devices.Bridge{Name: "br0"}))
	assert.Equal(t, opDeleteLink, createUndo(devices.OvsBridge{Name: "ovsbr0"}))
	assert.Contains(t, KernelFeatures(), "openvswitch")
}

// TestOvsUndoOnDisk checks that the undo of an Open vSwitch bridge, written
// ahead to the journal on disk, comes back from it as the del-br it is.
func TestOvsUndoOnDisk(t *testing.T) {
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	j := journal{file: jf}
	u := undo{Group: "g", Op: createUndo(devices.OvsBridge{Name: "ovsbr0"}), Kind: createUndoKind(devices.OvsBridge{Name: "ovsbr0"}), Link: "ovsbr0"}
	require.True(t, j.writesAhead(u))
	r, err := j.reserve(u)
	require.NoError(t, err)
	j.commit(r)
	require.NoError(t, jf.close())
	_, o := testOpenJournal(t, path, false)
	require.Len(t, o.left, 1)
	assert.Equal(t, opDeleteLink, o.left[0].Op)
	assert.Equal(t, ovsKind, o.left[0].Kind)
	assert.Equal(t, "ovsbr0", o.left[0].Link)
}

// fakeOvsVsctl stands for ovs-vsctl: it appends its argv to $FAKE_OVS_LOG,
// and add-br NAME makes a veth NAME (peer NAMEp) where it runs; del-br
// deletes it. add-br of "ovsfail" fails as ovs-vsctl does; add-br of
// "ovsnone" makes nothing. show fails when $FAKE_OVS_DOWN is set.
const fakeOvsVsctl = `#!/bin/sh
echo "$*" >> "$FAKE_OVS_LOG"
while [ $# -gt 0 ]; do
	case $1 in --*) shift ;; *) break ;; esac
done
case $1 in
show)
	if [ -n "$FAKE_OVS_DOWN" ]; then
		echo "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)" >&2
		exit 1
	fi
	echo "fake" ;;
add-br)
	case $2 in
	ovsfail) echo "ovs-vsctl: cannot create a bridge named $2 because a bridge named $2 already exists" >&2; exit 1 ;;
	ovsnone) exit 0 ;;
	esac
	exec ip link add "$2" type veth peer name "$2"p ;;
del-br)
	ip link del "$2" 2>/dev/null
	exit 0 ;;
list-br)
	[ -z "$FAKE_OVS_BRIDGES" ] || echo "$FAKE_OVS_BRIDGES" ;;
*)
	echo "ovs-vsctl: unknown command '$1'" >&2
	exit 1 ;;
esac
`

// testFakeOvs puts the fake ovs-vsctl first in PATH and returns its log.
func testFakeOvs(t *testing.T) string {
	t.Helper()
	testFakeTool(t, "ovs-vsctl", fakeOvsVsctl)
	log := filepath.Join(t.TempDir(), "argv")
	t.Setenv("FAKE_OVS_LOG", log)
	return log
}

func testOvsLog(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestProbeOvs(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("requires sh for the fake ovs-vsctl")
	}
	log := testFakeOvs(t)
	ok, why := probeOvs()
	assert.True(t, ok, why)
	assert.Equal(t, []string{"--timeout=5 show"}, testOvsLog(t, log))

	t.Setenv("FAKE_OVS_DOWN", "1")
	ok, why = probeOvs()
	assert.False(t, ok)
	assert.Contains(t, why, "database connection failed")

	t.Setenv("PATH", t.TempDir())
	ok, why = probeOvs()
	assert.False(t, ok)
	assert.Contains(t, why, "requires ovs-vsctl")
}

func testCreateOvs(t *testing.T, c pb.AgentClient, host, group, name string) error {
	t.Helper()
	kind, data, err := devices.Marshal(devices.OvsBridge{Name: name})
	require.NoError(t, err)
	_, err = c.CreateLink(testCtx(t), &pb.CreateLinkRequest{Host: host, Group: group, Spec: &pb.CreateLinkRequest_Generic{Generic: &pb.GenericSpec{Kind: kind, Json: data}}})
	return err
}

// TestOvsBridgeFake makes an Open vSwitch bridge on a namespace host with a
// fake ovs-vsctl: the agent runs it in the host's namespace, waits for the
// device, and its undo runs del-br.
func TestOvsBridgeFake(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("requires root: makes network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("requires ip for the fake ovs-vsctl")
	}
	log := testFakeOvs(t)
	_, c := testServerOpts(t, Options{Lab: true})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testHost(t, c, "h2")
	require.NoError(t, testCreateOvs(t, c, "h1", "g", "ovsbr0"))
	assert.Contains(t, testLinkNames(t, c, "h1"), "ovsbr0", "made in h1's namespace")
	assert.NotContains(t, testLinkNames(t, c, "h2"), "ovsbr0")
	assert.Equal(t, []string{"--timeout=10 add-br ovsbr0"}, testOvsLog(t, log))

	err := testCreateOvs(t, c, "h1", "g", "ovsbr0")
	assert.ErrorContains(t, err, `create openvswitch bridge "ovsbr0"`)
	assert.Len(t, testOvsLog(t, log), 1, "an existing device is refused before ovs-vsctl runs")

	err = testCreateOvs(t, c, "h1", "g", "ovsfail")
	assert.ErrorContains(t, err, `create openvswitch bridge "ovsfail"`)
	assert.ErrorContains(t, err, "because a bridge named ovsfail already exists", "ovs-vsctl's stderr")

	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.NotContains(t, testLinkNames(t, c, "h1"), "ovsbr0", "the undo deleted it")
	assert.Contains(t, testOvsLog(t, log), "--timeout=10 --if-exists del-br ovsbr0")

	t.Setenv("PATH", t.TempDir())
	err = testCreateOvs(t, c, "h1", "g", "ovsbr1")
	testCode(t, err, codes.Aborted, `"ovsbr1"`, "requires ovs-vsctl")
}

// TestOvsStartable checks what the agent of a VM guest says it lacks to
// run Open vSwitch itself.
func TestOvsStartable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	why := ovsStartable()
	assert.Contains(t, why, "requires ovs-vsctl, ovsdb-tool, ovsdb-server, ovs-vswitchd")
	ownOvs.mu.Lock()
	ownOvs.enabled = true
	ownOvs.mu.Unlock()
	t.Cleanup(func() {
		ownOvs.mu.Lock()
		ownOvs.enabled = false
		ownOvs.mu.Unlock()
	})
	ok, why := probeOvs()
	assert.False(t, ok)
	assert.Contains(t, why, "requires ovs-vsctl")
	require.NoError(t, stopOwnOvs(), "nothing started, nothing to stop")
}

// TestStopOwnOvsWhenUnused checks that the Open vSwitch daemons the agent
// started are stopped once ovs-vsctl list-br prints no bridge, and kept
// while it prints one. A sleep stands in for the daemons.
func TestStopOwnOvsWhenUnused(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("requires sleep for the stand-in daemon")
	}
	testFakeOvs(t)
	srv, err := NewServer(Options{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown() })
	h := srv.hosts[""]
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	p, err := h.startDaemon(sleep, []string{"lnst-test-daemon", "600"})
	require.NoError(t, err)
	d := &ovsDaemons{dir: t.TempDir(), procs: []*ovsProc{{name: "lnst-test-daemon", daemon: p}}}
	ownOvs.mu.Lock()
	ownOvs.d = d
	ownOvs.mu.Unlock()
	t.Cleanup(func() {
		ownOvs.mu.Lock()
		ownOvs.d = nil
		ownOvs.mu.Unlock()
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	})

	t.Setenv("FAKE_OVS_BRIDGES", "ovsbr1")
	require.NoError(t, h.stopOwnOvsIfUnused())
	assert.False(t, p.exited(), "a bridge is left: the daemons run on")

	t.Setenv("FAKE_OVS_BRIDGES", "")
	require.NoError(t, h.stopOwnOvsIfUnused())
	assert.True(t, p.exited(), "no bridge is left: the daemons are stopped")
	ownOvs.mu.Lock()
	assert.Nil(t, ownOvs.d)
	ownOvs.mu.Unlock()
}
