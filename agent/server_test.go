package agent

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/peercred"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// testServer serves a lab agent in this process on an abstract unix socket
// and returns it with a client of it. Cleanup shuts the agent down (every
// change undone, every namespace host removed) and stops serving.
func testServer(t *testing.T) (*Server, pb.AgentClient) {
	t.Helper()
	return testServerOpts(t, Options{Lab: true})
}

func testServerOpts(t *testing.T, opts Options) (*Server, pb.AgentClient) {
	t.Helper()
	srv, err := NewServer(opts)
	require.NoError(t, err, "new agent")
	name := fmt.Sprintf("lnst-test-%d-%016x", os.Getpid(), rand.Uint64())
	lis, err := net.Listen("unix", "@"+name)
	require.NoError(t, err, "listen on @%s", name)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	// An abstract socket has no permissions and the agent runs as root:
	// let only this process's user in.
	go g.Serve(peercred.Restrict(lis, os.Geteuid(), nil))
	conn, err := grpc.NewClient("unix-abstract:"+name, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err, "dial @%s", name)
	t.Cleanup(func() {
		conn.Close()
		for _, err := range srv.Shutdown() {
			t.Errorf("agent shutdown: %v", err)
		}
		g.Stop()
	})
	return srv, pb.NewAgentClient(conn)
}

// testCtx bounds one test's calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testHost creates a namespace host in group t.Name().
func testHost(t *testing.T, c pb.AgentClient, name string) {
	t.Helper()
	_, err := c.CreateHost(testCtx(t), &pb.CreateHostRequest{Name: name, Group: t.Name()})
	require.NoError(t, err, "create host %s", name)
}

// testRun runs argv on host and fails the test unless it exits 0.
func testRun(t *testing.T, c pb.AgentClient, host string, argv ...string) *pb.JobResult {
	t.Helper()
	r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Host: host, Argv: argv})
	require.NoError(t, err, "run %q on host %q", argv, host)
	require.Zero(t, r.ExitCode, "run %q on host %q: stdout %q stderr %q error %q", argv, host, r.Stdout, r.Stderr, r.Error)
	return r
}

// testSh runs a shell command line on host and returns its stdout.
func testSh(t *testing.T, c pb.AgentClient, host, cmd string) string {
	t.Helper()
	return string(testRun(t, c, host, "/bin/sh", "-c", cmd).Stdout)
}

// testCode asserts that err is a status with code, whose message contains
// every one of want.
func testCode(t *testing.T, err error, code codes.Code, want ...string) {
	t.Helper()
	if !assert.Error(t, err, "want %v", code) {
		return
	}
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	assert.Equal(t, code, st.Code(), "code of %v", err)
	for _, w := range want {
		assert.Contains(t, st.Message(), w)
	}
}

// testWaitFor polls cond until it holds or timeout passes.
func testWaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testProc is one process as /proc/PID/stat shows it.
type testProc struct {
	pid, ppid, pgrp int
	state           byte
}

// testProcs lists the live (not zombie) processes of the machine.
func testProcs(t *testing.T) []testProc {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var procs []testProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		p := testProc{pid: pid, state: f[0][0]}
		p.ppid, _ = strconv.Atoi(f[1])
		p.pgrp, _ = strconv.Atoi(f[2])
		if p.state == 'Z' || p.state == 'X' {
			// Dead. Orphans are reparented to PID 1, which here does
			// not reap them.
			continue
		}
		procs = append(procs, p)
	}
	return procs
}

// testGroup lists the live processes of process group pgid.
func testGroup(t *testing.T, pgid int) []testProc {
	var g []testProc
	for _, p := range testProcs(t) {
		if p.pgrp == pgid {
			g = append(g, p)
		}
	}
	return g
}

// testGroupGone waits a little for the processes of group pgid to end: the
// agent killed them when the job ended, but a killed process lives on for
// a moment after it closed its files.
func testGroupGone(t *testing.T, pgid int) {
	t.Helper()
	testWaitFor(t, fmt.Sprintf("the processes of job group %d to end", pgid), 2*time.Second, func() bool {
		return len(testGroup(t, pgid)) == 0
	})
}

// testAlive reports whether pid is a live process.
func testAlive(t *testing.T, pid int) bool {
	for _, p := range testProcs(t) {
		if p.pid == pid {
			return true
		}
	}
	return false
}

// testFirstLine streams a job's output until its first stdout line, which
// must be a number (a shell's $$), and returns it.
func testFirstLine(t *testing.T, c pb.AgentClient, host string, id int64) int {
	t.Helper()
	stream, err := c.StreamJob(testCtx(t), &pb.JobRef{Host: host, Id: id})
	require.NoError(t, err)
	var out []byte
	for !bytes.Contains(out, []byte("\n")) {
		o, err := stream.Recv()
		require.NoError(t, err, "stream job %d until its first line (got %q)", id, out)
		if o.Stream == pb.JobOutput_STDOUT {
			out = append(out, o.Data...)
		}
	}
	line, _, _ := strings.Cut(string(out), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "first line of job %d", id)
	return n
}

// testNetnsInode is the inode of a namespace file (/proc/PID/ns/net).
func testNetnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Stat(path, &st), path)
	return st.Ino
}

// testNetnsHeld reports whether any task of any process is in the
// network namespace of inode ino.
func testNetnsHeld(ino uint64) bool {
	tasks, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	for _, p := range tasks {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == ino {
			return true
		}
	}
	return false
}

// testLinkNames lists the devices of a host, sorted.
func testLinkNames(t *testing.T, c pb.AgentClient, host string) []string {
	t.Helper()
	names := strings.Fields(testSh(t, c, host, "ls /sys/class/net"))
	sort.Strings(names)
	return names
}

// testLinkInfo reads a device, without its counters.
func testLinkInfo(t *testing.T, c pb.AgentClient, host, name string) *pb.LinkInfoReply {
	t.Helper()
	r, err := c.LinkInfo(testCtx(t), &pb.LinkRef{Host: host, Name: name})
	require.NoError(t, err, "link info of %s on host %q", name, host)
	r.Stats = nil
	sort.Strings(r.Ips)
	return r
}

func TestHello(t *testing.T) {
	_, c := testServer(t)
	r, err := c.Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err)
	assert.Equal(t, Version, r.Version)
	assert.True(t, r.Lab)
	assert.Equal(t, int32(os.Getpid()), r.Pid)
	assert.NotEmpty(t, r.Kernel)
	assert.NotEmpty(t, r.Arch)
}

func TestNotLabAgentRefusesLabCalls(t *testing.T) {
	_, c := testServerOpts(t, Options{})
	ctx := testCtx(t)
	_, err := c.CreateHost(ctx, &pb.CreateHostRequest{Name: "h1", Group: "g"})
	testCode(t, err, codes.FailedPrecondition, "not a lab agent")
	_, err = c.Connect(ctx, &pb.ConnectRequest{Host: "", Ifname: "eth9", Network: "n1", Group: "g"})
	testCode(t, err, codes.FailedPrecondition, "not a lab agent")
}

func TestCreateHostErrors(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	_, err := c.CreateHost(ctx, &pb.CreateHostRequest{Name: "", Group: "g"})
	testCode(t, err, codes.InvalidArgument, "host name is empty")
	testHost(t, c, "h1")
	_, err = c.CreateHost(ctx, &pb.CreateHostRequest{Name: "h1", Group: "g"})
	testCode(t, err, codes.AlreadyExists, `"h1"`)
	_, err = c.DestroyHost(ctx, &pb.HostRef{Host: ""})
	testCode(t, err, codes.InvalidArgument, "own host")
	_, err = c.DestroyHost(ctx, &pb.HostRef{Host: "nope"})
	testCode(t, err, codes.NotFound, `"nope"`)
}

func TestUnknownHostIsNotFound(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	calls := map[string]func() error{
		"RunJob": func() error {
			_, err := c.RunJob(ctx, &pb.StartJobRequest{Host: "nope", Argv: []string{"true"}})
			return err
		},
		"StartJob": func() error {
			_, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "nope", Argv: []string{"true"}})
			return err
		},
		"WaitJob": func() error { _, err := c.WaitJob(ctx, &pb.JobRef{Host: "nope", Id: 1}); return err },
		"KillJob": func() error {
			_, err := c.KillJob(ctx, &pb.KillJobRequest{Host: "nope", Id: 1, Signal: 15})
			return err
		},
		"StreamJob": func() error {
			s, err := c.StreamJob(ctx, &pb.JobRef{Host: "nope", Id: 1})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"CreateLink": func() error {
			_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "nope", Group: "g", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "br0"}}})
			return err
		},
		"DeleteLink": func() error {
			_, err := c.DeleteLink(ctx, &pb.LinkRef{Host: "nope", Group: "g", Name: "br0"})
			return err
		},
		"SetLink": func() error {
			_, err := c.SetLink(ctx, &pb.SetLinkRequest{Host: "nope", Group: "g", Name: "lo", Up: proto.Bool(true)})
			return err
		},
		"AddAddr": func() error {
			_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "nope", Group: "g", Name: "lo", Cidr: "198.18.0.1/24"})
			return err
		},
		"DelAddr": func() error {
			_, err := c.DelAddr(ctx, &pb.AddrRequest{Host: "nope", Group: "g", Name: "lo", Cidr: "198.18.0.1/24"})
			return err
		},
		"LinkInfo": func() error { _, err := c.LinkInfo(ctx, &pb.LinkRef{Host: "nope", Name: "lo"}); return err },
		"ReadValue": func() error {
			_, err := c.ReadValue(ctx, &pb.ValueRef{Host: "nope", Kind: kindSysctl, Key: "net.ipv4.ip_forward"})
			return err
		},
		"WriteValue": func() error {
			_, err := c.WriteValue(ctx, &pb.WriteValueRequest{Host: "nope", Group: "g", Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
			return err
		},
		"Connect": func() error {
			_, err := c.Connect(ctx, &pb.ConnectRequest{Host: "nope", Ifname: "eth0", Network: "n1", Group: "g"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			testCode(t, call(), codes.NotFound, `"nope"`)
		})
	}
	// Nothing was journaled by the failed calls.
	assert.Zero(t, testRestoreCount(t, c, "g"))
}

// testRestoreCount restores group and returns how many entries it undid;
// used to check that failed calls journal nothing.
func testRestoreCount(t *testing.T, c pb.AgentClient, group string) int32 {
	t.Helper()
	r, err := c.Restore(testCtx(t), &pb.RestoreRequest{Group: group})
	require.NoError(t, err)
	assert.Empty(t, r.Errors)
	return r.Undone
}

func TestInvalidArguments(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")

	_, err := c.RunJob(ctx, &pb.StartJobRequest{Host: "h1"})
	testCode(t, err, codes.InvalidArgument, "argv is empty")
	_, err = c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{""}})
	testCode(t, err, codes.InvalidArgument, "argv is empty")
	_, err = c.RunJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{"true"}, Env: []string{"NOEQUALS"}})
	testCode(t, err, codes.InvalidArgument, `"NOEQUALS"`)

	for _, sig := range []int32{0, -1, 65} {
		_, err = c.KillJob(ctx, &pb.KillJobRequest{Host: "h1", Id: 1, Signal: sig})
		testCode(t, err, codes.InvalidArgument, fmt.Sprintf("signal %d", sig))
	}

	for _, cidr := range []string{"198.18.0.1", "198.18.0.1/33", "nonsense", ""} {
		_, err = c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "lo", Cidr: cidr})
		testCode(t, err, codes.InvalidArgument, fmt.Sprintf("%q", cidr))
		_, err = c.DelAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "lo", Cidr: cidr})
		testCode(t, err, codes.InvalidArgument, fmt.Sprintf("%q", cidr))
	}

	for _, key := range []string{"net/../../etc/passwd", "net..ipv4", "", "kernel\x00"} {
		_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: key, Value: "1"})
		testCode(t, err, codes.InvalidArgument, "sysctl key")
		_, err = c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: kindSysctl, Key: key})
		testCode(t, err, codes.InvalidArgument, "sysctl key")
	}
	for _, path := range []string{"/sys/../etc/passwd", "/etc/passwd", "sys/class/net/lo/mtu"} {
		_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysfs, Key: path, Value: "1"})
		testCode(t, err, codes.InvalidArgument, fmt.Sprintf("%q", path))
	}
	_, err = c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: "proc", Key: "x"})
	testCode(t, err, codes.InvalidArgument, `"proc"`)

	_, err = c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: "bad/name", Network: "n1", Group: "g"})
	testCode(t, err, codes.InvalidArgument, `"bad/name"`)
	_, err = c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: "averyveryverylongname", Network: "n1", Group: "g"})
	testCode(t, err, codes.InvalidArgument, `"averyveryverylongname"`)
	_, err = c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: "eth0", Network: "", Group: "g"})
	testCode(t, err, codes.InvalidArgument, "network name is empty")
	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: ""})
	testCode(t, err, codes.InvalidArgument, "group is empty")

	assert.Zero(t, testRestoreCount(t, c, "g"), "invalid calls journal nothing")
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, "h1"))
}

// TestLinkCallsBadNameInvalidArgument checks that device calls name a bad
// device name in their error, with code InvalidArgument as for Connect.
func TestLinkCallsBadNameInvalidArgument(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	const bad = "bad/name"
	calls := map[string]func() error{
		"CreateLink veth": func() error {
			_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: bad, PeerName: "v1"}}})
			return err
		},
		"CreateLink veth peer": func() error {
			_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: bad}}})
			return err
		},
		"CreateLink bridge": func() error {
			_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: bad}}})
			return err
		},
		"DeleteLink": func() error { _, err := c.DeleteLink(ctx, &pb.LinkRef{Host: "h1", Group: "g", Name: bad}); return err },
		"SetLink": func() error {
			_, err := c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: bad, Up: proto.Bool(true)})
			return err
		},
		"AddAddr": func() error {
			_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: bad, Cidr: "198.18.0.1/24"})
			return err
		},
		"DelAddr": func() error {
			_, err := c.DelAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: bad, Cidr: "198.18.0.1/24"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.Error(t, err)
			assert.Contains(t, status.Convert(err).Message(), `"bad/name"`)
			assert.Equal(t, codes.InvalidArgument, status.Code(err))
		})
	}
	_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g"})
	testCode(t, err, codes.InvalidArgument, "no device spec")
	_, err = c.LinkInfo(ctx, &pb.LinkRef{Host: "h1", Name: bad})
	testCode(t, err, codes.InvalidArgument, `"bad/name"`)
	_, err = c.LinkInfo(ctx, &pb.LinkRef{Host: "h1", Name: "nosuch0"})
	testCode(t, err, codes.NotFound, `"nosuch0"`)
	_, err = c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: "lo", Mtu: proto.Int32(10)})
	testCode(t, err, codes.InvalidArgument, "MTU 10")
}

func TestCreateHostIsolatesNetwork(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	testHost(t, c, "h2")

	out := testSh(t, c, "h1", "ip -o link")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, "ip -o link in h1:\n%s", out)
	assert.Contains(t, lines[0], ": lo: ")
	assert.Contains(t, lines[0], ",UP", "lo is up")

	dev := testSh(t, c, "h1", "cat /proc/self/net/dev")
	assert.Contains(t, dev, "lo:")
	for _, root := range []string{"eth0", "ifb0"} {
		assert.NotContains(t, dev, root+":", "the root namespace's %s shows in h1", root)
	}
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, "h1"), "h1's /sys shows its own devices")

	// Each host has its own namespace, not the agent's.
	self := testNetnsInode(t, "/proc/self/ns/net")
	ns1 := strings.TrimSpace(testSh(t, c, "h1", "stat -L -c %i /proc/self/ns/net"))
	ns2 := strings.TrimSpace(testSh(t, c, "h2", "stat -L -c %i /proc/self/ns/net"))
	nsRoot := strings.TrimSpace(testSh(t, c, "", "stat -L -c %i /proc/self/ns/net"))
	assert.Equal(t, strconv.FormatUint(self, 10), nsRoot, "jobs of the agent's host run in its namespace")
	assert.NotEqual(t, nsRoot, ns1)
	assert.NotEqual(t, nsRoot, ns2)
	assert.NotEqual(t, ns1, ns2)

	// A device made in h1 shows in h1's /sys and not in h2's or the agent's.
	_, err := c.CreateLink(testCtx(t), &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "brtest0"}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"brtest0", "lo"}, testLinkNames(t, c, "h1"))
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, "h2"))
	_, err = os.Stat("/sys/class/net/brtest0")
	assert.True(t, os.IsNotExist(err), "brtest0 shows in the agent's /sys")
	r, err := c.ReadValue(testCtx(t), &pb.ValueRef{Host: "h1", Kind: kindSysfs, Key: "/sys/class/net/brtest0/mtu"})
	require.NoError(t, err)
	assert.Equal(t, "1500", r.Value)
	_, err = c.ReadValue(testCtx(t), &pb.ValueRef{Host: "h2", Kind: kindSysfs, Key: "/sys/class/net/brtest0/mtu"})
	testCode(t, err, codes.Aborted, "brtest0")
}

func TestDestroyHost(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	ns := testNetnsInode(t, "/proc/self/ns/net")
	nsh1, err := strconv.ParseUint(strings.TrimSpace(testSh(t, c, "h1", "stat -L -c %i /proc/self/ns/net")), 10, 64)
	require.NoError(t, err)
	require.NotEqual(t, ns, nsh1)
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: "g", Argv: []string{"sh", "-c", "echo $$; exec sleep 100"}})
	require.NoError(t, err)
	pid := testFirstLine(t, c, "h1", j.Id)
	require.True(t, testAlive(t, pid))

	_, err = c.DestroyHost(ctx, &pb.HostRef{Host: "h1"})
	require.NoError(t, err)
	assert.False(t, testAlive(t, pid), "the host's job is killed and reaped")
	testWaitFor(t, "h1's namespace to go", 5*time.Second, func() bool { return !testNetnsHeld(nsh1) })
	_, err = c.RunJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{"true"}})
	testCode(t, err, codes.NotFound, `"h1"`)

	// The name can be used again.
	testHost(t, c, "h1")
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, "h1"))
}

func TestConnectAndPing(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testHost(t, c, "h2")
	testHost(t, c, "h3")
	for _, h := range []string{"h1", "h2"} {
		_, err := c.Connect(ctx, &pb.ConnectRequest{Host: h, Ifname: "eth0", Network: "n1", Group: t.Name()})
		require.NoError(t, err, "connect %s", h)
	}
	// h3 is on another network.
	_, err := c.Connect(ctx, &pb.ConnectRequest{Host: "h3", Ifname: "eth0", Network: "n2", Group: t.Name()})
	require.NoError(t, err)

	assert.Equal(t, []string{"eth0", "lo"}, testLinkNames(t, c, "h1"))
	info := testLinkInfo(t, c, "h1", "eth0")
	assert.Equal(t, "up", info.State)
	assert.Equal(t, "veth", info.Type)
	assert.Equal(t, "veth", info.Driver)

	for h, cidr := range map[string]string{"h1": "198.18.1.1/24", "h2": "198.18.1.2/24", "h3": "198.18.1.3/24"} {
		_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: h, Group: t.Name(), Name: "eth0", Cidr: cidr})
		require.NoError(t, err, "add %s on %s", cidr, h)
	}
	out := testSh(t, c, "h1", "ping -c 2 -i 0.2 -W 5 198.18.1.2")
	assert.Contains(t, out, "2 received")
	out = testSh(t, c, "h2", "ping -c 1 -W 5 198.18.1.1")
	assert.Contains(t, out, "1 received")

	r, err := c.RunJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{"ping", "-c", "1", "-W", "1", "198.18.1.3"}})
	require.NoError(t, err)
	assert.NotZero(t, r.ExitCode, "h3 is on another network, yet h1 reaches it: %s", r.Stdout)

	stats, err := c.LinkInfo(ctx, &pb.LinkRef{Host: "h1", Name: "eth0"})
	require.NoError(t, err)
	require.NotNil(t, stats.Stats)
	assert.GreaterOrEqual(t, stats.Stats.TxPackets, uint64(3), "pings sent on h1's eth0")
	assert.GreaterOrEqual(t, stats.Stats.RxPackets, uint64(3), "pings received on h1's eth0")
}

// TestConnectAfterDestroyNetwork checks that a network made after others
// were destroyed gets a bridge of its own: a switch namespace apart from
// the network still there, whose bridge has only its own port.
func TestConnectAfterDestroyNetwork(t *testing.T) {
	srv, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	for i, n := range []string{"a", "b", "c"} {
		_, err := c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: fmt.Sprintf("eth%d", i), Network: n, Group: t.Name()})
		require.NoError(t, err, "connect eth%d to %s", i, n)
	}
	for _, n := range []string{"a", "b"} {
		_, err := c.DestroyNetwork(ctx, &pb.DestroyNetworkRequest{Network: n})
		require.NoError(t, err, "destroy network %s", n)
	}
	_, err := c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: "eth3", Network: "d", Group: t.Name()})
	require.NoError(t, err, "connect eth3 to d")
	// eth2 and eth3 are each the one port of their own network's bridge
	// (eth0 and eth1 go with their networks' namespaces, when the kernel
	// gets to it).
	assert.Subset(t, testLinkNames(t, c, "h1"), []string{"eth2", "eth3"})
	srv.mu.Lock()
	networks := maps.Clone(srv.networks)
	srv.mu.Unlock()
	require.ElementsMatch(t, []string{"c", "d"}, slices.Collect(maps.Keys(networks)))
	require.False(t, networks["c"] == networks["d"], "networks c and d share a switch")
	for _, n := range []string{"c", "d"} {
		sw := networks[n]
		br, err := sw.nl.LinkByName(labBridge)
		require.NoError(t, err, "network %s's bridge", n)
		links, err := sw.nl.LinkList()
		require.NoError(t, err, "network %s's links", n)
		var ports []string
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				ports = append(ports, l.Attrs().Name)
			}
		}
		assert.Len(t, ports, 1, "network %s's bridge has one port, h1's", n)
	}
	_, err = c.DestroyNetwork(ctx, &pb.DestroyNetworkRequest{Network: "unknown"})
	assert.NoError(t, err, "an unknown network is already gone")
}

func TestRestoreConnect(t *testing.T) {
	srv, c := testServer(t)
	ctx := testCtx(t)
	_, err := c.CreateHost(ctx, &pb.CreateHostRequest{Name: "h1", Group: "base"})
	require.NoError(t, err)
	_, err = c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: "eth0", Network: "n1", Group: "g"})
	require.NoError(t, err)
	require.Equal(t, []string{"eth0", "lo"}, testLinkNames(t, c, "h1"))
	srv.mu.Lock()
	nets := len(srv.networks)
	srv.mu.Unlock()
	require.Equal(t, 1, nets)

	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Empty(t, r.Errors)
	assert.Equal(t, int32(1), r.Undone, "the network (its ports go with its namespace)")
	srv.mu.Lock()
	nets = len(srv.networks)
	srv.mu.Unlock()
	assert.Zero(t, nets)
	// The kernel dismantles a released namespace in the background.
	testWaitFor(t, "the host's end of the port to go with the network", 5*time.Second, func() bool {
		names := testLinkNames(t, c, "h1")
		return len(names) == 1 && names[0] == "lo"
	})

	r, err = c.Restore(ctx, &pb.RestoreRequest{Group: "base"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), r.Undone)
	_, err = c.RunJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{"true"}})
	testCode(t, err, codes.NotFound, `"h1"`)
}

func TestLinksAndRestore(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	const h = "h1"
	testHost(t, c, h)

	// The state to come back to, made in another group.
	for _, req := range []*pb.CreateLinkRequest{
		{Host: h, Group: "base", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "a0", PeerName: "a1"}}},
		{Host: h, Group: "base", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "brb"}}},
	} {
		_, err := c.CreateLink(ctx, req)
		require.NoError(t, err)
	}
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: h, Group: "base", Name: "a1", Cidr: "198.18.6.1/24"})
	require.NoError(t, err)
	_, err = c.SetLink(ctx, &pb.SetLinkRequest{Host: h, Group: "base", Name: "a1", Mtu: proto.Int32(1450)})
	require.NoError(t, err)

	names := testLinkNames(t, c, h)
	require.Equal(t, []string{"a0", "a1", "brb", "lo"}, names)
	before := map[string]*pb.LinkInfoReply{}
	for _, n := range names {
		before[n] = testLinkInfo(t, c, h, n)
	}
	assert.Equal(t, "veth", before["a0"].Type)
	assert.Equal(t, "bridge", before["brb"].Type)
	assert.Equal(t, "bridge", before["brb"].Driver)
	assert.Equal(t, []string{"198.18.6.1/24"}, before["a1"].Ips)
	assert.Equal(t, int32(1450), before["a1"].Mtu)
	assert.Equal(t, "down", before["a0"].State)

	// Changes of group g.
	const g = "g"
	var seqs []uint64
	change := func(r *pb.ChangeReply, err error) {
		t.Helper()
		require.NoError(t, err)
		require.NotZero(t, r.Seq)
		if len(seqs) > 0 {
			require.Greater(t, r.Seq, seqs[len(seqs)-1], "sequence numbers increase")
		}
		seqs = append(seqs, r.Seq)
	}
	change(c.CreateLink(ctx, &pb.CreateLinkRequest{Host: h, Group: g, Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}}))
	change(c.CreateLink(ctx, &pb.CreateLinkRequest{Host: h, Group: g, Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "br0", Stp: true}}}))
	change(c.SetLink(ctx, &pb.SetLinkRequest{Host: h, Group: g, Name: "v0", Master: proto.String("br0"), Up: proto.Bool(true)}))
	change(c.SetLink(ctx, &pb.SetLinkRequest{Host: h, Group: g, Name: "a0", Mtu: proto.Int32(1300), Master: proto.String("brb"), Up: proto.Bool(true)}))
	change(c.SetLink(ctx, &pb.SetLinkRequest{Host: h, Group: g, Name: "a1", Mtu: proto.Int32(1300), Up: proto.Bool(true)}))
	change(c.SetLink(ctx, &pb.SetLinkRequest{Host: h, Group: g, Name: "brb", Up: proto.Bool(true)}))
	change(c.AddAddr(ctx, &pb.AddrRequest{Host: h, Group: g, Name: "a0", Cidr: "198.18.5.1/24"}))
	change(c.AddAddr(ctx, &pb.AddrRequest{Host: h, Group: g, Name: "a1", Cidr: "2001:db8:5::1/64"}))
	change(c.DelAddr(ctx, &pb.AddrRequest{Host: h, Group: g, Name: "a1", Cidr: "198.18.6.1/24"}))

	assert.Equal(t, []string{"a0", "a1", "br0", "brb", "lo", "v0", "v1"}, testLinkNames(t, c, h))
	a0 := testLinkInfo(t, c, h, "a0")
	assert.Equal(t, int32(1300), a0.Mtu)
	assert.Equal(t, "brb", a0.Master)
	assert.Equal(t, "up", a0.State)
	assert.Contains(t, a0.Ips, "198.18.5.1/24")
	a1 := testLinkInfo(t, c, h, "a1")
	assert.Contains(t, a1.Ips, "2001:db8:5::1/64")
	assert.NotContains(t, a1.Ips, "198.18.6.1/24")
	assert.Equal(t, "br0", testLinkInfo(t, c, h, "v0").Master)
	stp, err := c.ReadValue(ctx, &pb.ValueRef{Host: h, Kind: kindSysfs, Key: "/sys/class/net/br0/bridge/stp_state"})
	require.NoError(t, err)
	assert.Equal(t, "1", stp.Value)

	// Restore g, newest first; base is left alone.
	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: g})
	require.NoError(t, err)
	assert.Empty(t, r.Errors)
	assert.Equal(t, int32(len(seqs)), r.Undone)
	assert.Equal(t, names, testLinkNames(t, c, h), "created links are gone")
	var brbMAC []byte
	for _, n := range names {
		after := testLinkInfo(t, c, h, n)
		if n == "brb" {
			// Checked below.
			brbMAC = after.Hwaddr
			after.Hwaddr = before[n].Hwaddr
		}
		assert.True(t, proto.Equal(before[n], after), "%s before restore:\n%v\nafter:\n%v", n, before[n], after)
	}
	r, err = c.Restore(ctx, &pb.RestoreRequest{Group: g})
	require.NoError(t, err)
	assert.Zero(t, r.Undone, "a group is restored once")

	t.Run("bridge hwaddr", func(t *testing.T) {
		assert.True(t, bytes.Equal(before["brb"].Hwaddr, brbMAC),
			"enslaving a0 changed brb's address from %x to %x", before["brb"].Hwaddr, brbMAC)
	})

	// Restore base: everything gone but lo.
	r, err = c.Restore(ctx, &pb.RestoreRequest{Group: "base"})
	require.NoError(t, err)
	assert.Empty(t, r.Errors)
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, h))
}

func TestRestoreSince(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	read := func(key string) string {
		t.Helper()
		r, err := c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: kindSysctl, Key: key})
		require.NoError(t, err)
		return r.Value
	}
	ttl0, fwd0 := read("net/ipv4/ip_default_ttl"), read("net.ipv4.ip_forward")
	require.Equal(t, "0", fwd0)
	w1, err := c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: "net/ipv4/ip_default_ttl", Value: "99"})
	require.NoError(t, err)
	assert.Equal(t, ttl0, w1.Old)
	w2, err := c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err)
	assert.Equal(t, "0", w2.Old)
	require.Greater(t, w2.Seq, w1.Seq)

	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g", Since: w2.Seq})
	require.NoError(t, err)
	assert.Equal(t, int32(1), r.Undone)
	assert.Equal(t, "0", read("net.ipv4.ip_forward"), "the change at since is undone")
	assert.Equal(t, "99", read("net/ipv4/ip_default_ttl"), "the change before since is kept")
	r, err = c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), r.Undone)
	assert.Equal(t, ttl0, read("net/ipv4/ip_default_ttl"))
}

func TestWriteValueInHostRestored(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	rootFwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)

	w, err := c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err)
	assert.Equal(t, "0", w.Old)
	assert.NotZero(t, w.Seq)
	r, err := c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: kindSysctl, Key: "net.ipv4.ip_forward"})
	require.NoError(t, err)
	assert.Equal(t, "1", r.Value)
	assert.Equal(t, "1\n", testSh(t, c, "h1", "cat /proc/sys/net/ipv4/ip_forward"), "jobs in h1 see the value")
	now, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, string(rootFwd), string(now), "the agent's own namespace is untouched")

	// A sysfs value of h1's lo.
	w, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysfs, Key: "/sys/class/net/lo/mtu", Value: "9000"})
	require.NoError(t, err)
	assert.Equal(t, "65536", w.Old)
	assert.Equal(t, int32(9000), testLinkInfo(t, c, "h1", "lo").Mtu)

	rr, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Empty(t, rr.Errors)
	assert.Equal(t, int32(2), rr.Undone)
	r, err = c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: kindSysctl, Key: "net.ipv4.ip_forward"})
	require.NoError(t, err)
	assert.Equal(t, "0", r.Value)
	assert.Equal(t, int32(65536), testLinkInfo(t, c, "h1", "lo").Mtu)

	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: "net.ipv4.no_such_value", Value: "1"})
	testCode(t, err, codes.Aborted, "net.ipv4.no_such_value")
	assert.Zero(t, testRestoreCount(t, c, "g"), "a failed write journals nothing")
}

func TestAddAddrIPv6NotTentative(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testHost(t, c, "h2")
	for _, h := range []string{"h1", "h2"} {
		_, err := c.Connect(ctx, &pb.ConnectRequest{Host: h, Ifname: "eth0", Network: "n6", Group: "g"})
		require.NoError(t, err)
	}
	for h, cidr := range map[string]string{"h1": "2001:db8:6::1/64", "h2": "2001:db8:6::2/64"} {
		_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: h, Group: "g", Name: "eth0", Cidr: cidr})
		require.NoError(t, err)
		out := testSh(t, c, h, "ip -6 -o addr show dev eth0")
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, cidr) {
				line = l
			}
		}
		require.NotEmpty(t, line, "%s not on eth0 of %s:\n%s", cidr, h, out)
		assert.NotContains(t, line, "tentative", "AddAddr returned before DAD finished")
	}
	out := testSh(t, c, "h1", "ping -6 -c 1 -W 5 2001:db8:6::2")
	assert.Contains(t, out, "1 received")
}

// TestAddAddrExistingKeptByRestore checks that an AddAddr that fails
// because the address is already there does not take it away on restore.
func TestAddAddrExistingKeptByRestore(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "a", Name: "lo", Cidr: "198.18.7.1/32"})
	require.NoError(t, err)
	_, err = c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "b", Name: "lo", Cidr: "198.18.7.1/32"})
	testCode(t, err, codes.Aborted, "198.18.7.1/32", "file exists")
	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: "b"})
	require.NoError(t, err)
	assert.Contains(t, testLinkInfo(t, c, "h1", "lo").Ips, "198.18.7.1/32", "restoring b removed a's address")
}

// TestRestoreGoesOnAfterFailure journals an entry that fails between two
// that succeed.
func TestRestoreGoesOnAfterFailure(t *testing.T) {
	srv, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err)
	srv.journal.add(undo{Group: "g", Op: opWriteValue, Host: "h1", ValueKind: kindSysfs, Key: "/sys/class/net/lo/mtu", Value: "not-a-number"})
	_, err = c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "br0"}}})
	require.NoError(t, err)

	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Equal(t, int32(3), r.Undone)
	require.Len(t, r.Errors, 1)
	assert.Contains(t, r.Errors[0], "/sys/class/net/lo/mtu", "the error names the entry")
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, "h1"), "the newer entry was undone")
	v, err := c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: kindSysctl, Key: "net.ipv4.ip_forward"})
	require.NoError(t, err)
	assert.Equal(t, "0", v.Value, "the older entry was undone after the failure")
}

// TestShutdownGoesOnAfterFailure keeps the host's namespace open to see
// that Shutdown undid the change after the one that failed.
func TestShutdownGoesOnAfterFailure(t *testing.T) {
	srv, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}})
	require.NoError(t, err)
	srv.journal.add(undo{Group: "g2", Op: opWriteValue, Host: "h1", ValueKind: kindSysfs, Key: "/sys/class/net/lo/mtu", Value: "not-a-number"})

	srv.mu.Lock()
	fd, err := unix.Dup(int(srv.hosts["h1"].ns))
	srv.mu.Unlock()
	require.NoError(t, err)
	ns := netns.NsHandle(fd)
	defer ns.Close()
	nl, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer nl.Close()
	_, err = nl.LinkByName("v0")
	require.NoError(t, err)

	errs := srv.Shutdown()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "/sys/class/net/lo/mtu")
	_, err = nl.LinkByName("v0")
	assert.Error(t, err, "v0 was not deleted")
	assert.Empty(t, srv.Shutdown(), "a second Shutdown has nothing to do")
}

func TestShutdown(t *testing.T) {
	srv, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testHost(t, c, "h2")
	_, err := c.Connect(ctx, &pb.ConnectRequest{Host: "h1", Ifname: "eth0", Network: "n1", Group: "g"})
	require.NoError(t, err)

	var inodes []uint64
	for _, h := range []string{"h1", "h2"} {
		ino, err := strconv.ParseUint(strings.TrimSpace(testSh(t, c, h, "stat -L -c %i /proc/self/ns/net")), 10, 64)
		require.NoError(t, err)
		inodes = append(inodes, ino)
	}
	srv.mu.Lock()
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(int(srv.networks["n1"].ns), &st))
	srv.mu.Unlock()
	inodes = append(inodes, st.Ino)

	var pids []int
	for _, h := range []string{"h1", "h2", ""} {
		// A job with a grandchild in its group, started in no group at all.
		j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: h, Argv: []string{"sh", "-c", "sleep 100 & echo $$; wait"}})
		require.NoError(t, err)
		pid := testFirstLine(t, c, h, j.Id)
		testWaitFor(t, "the job's sleep", 5*time.Second, func() bool { return len(testGroup(t, pid)) == 2 })
		pids = append(pids, pid)
	}
	for _, ino := range inodes {
		require.True(t, testNetnsHeld(ino))
	}

	require.Empty(t, srv.Shutdown())
	for _, pid := range pids {
		testGroupGone(t, pid)
	}
	for i, ino := range inodes {
		testWaitFor(t, fmt.Sprintf("namespace %d to go", i), 5*time.Second, func() bool { return !testNetnsHeld(ino) })
	}
	_, err = c.RunJob(ctx, &pb.StartJobRequest{Argv: []string{"true"}})
	testCode(t, err, codes.Unavailable, "shutting down")
	t.Run("CreateHost after Shutdown", func(t *testing.T) {
		_, err := c.CreateHost(ctx, &pb.CreateHostRequest{Name: "h3"})
		testCode(t, err, codes.Unavailable, "shutting down")
	})
}

// TestDeleteLinkRestored deletes a veth pair a0/a1 and a bridge in a
// namespace host; restore makes them again.
func TestDeleteLinkRestored(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	const h = "h1"
	testHost(t, c, h)
	_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: h, Group: "base", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "a0", PeerName: "a1"}}})
	require.NoError(t, err)
	_, err = c.CreateLink(ctx, &pb.CreateLinkRequest{Host: h, Group: "base", Spec: &pb.CreateLinkRequest_Bridge{Bridge: &pb.BridgeSpec{Name: "brb"}}})
	require.NoError(t, err)

	_, err = c.DeleteLink(ctx, &pb.LinkRef{Host: h, Group: "g", Name: "brb"})
	require.NoError(t, err)
	_, err = c.DeleteLink(ctx, &pb.LinkRef{Host: h, Group: "g", Name: "a0"})
	require.NoError(t, err)
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, h), "deleting a veth deletes its peer")
	_, err = c.DeleteLink(ctx, &pb.LinkRef{Host: h, Group: "g", Name: "lo"})
	testCode(t, err, codes.Aborted, `"lo"`, "veth or bridge")

	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Equal(t, int32(2), r.Undone)
	assert.Empty(t, r.Errors)
	assert.Equal(t, []string{"a0", "a1", "brb", "lo"}, testLinkNames(t, c, h), "the deleted devices are back")
	assert.Equal(t, "veth", testLinkInfo(t, c, h, "a1").Type)
	assert.Equal(t, "bridge", testLinkInfo(t, c, h, "brb").Type)
}

// TestNamespaceHostsLeaveNoThread makes and removes hosts: every thread of
// the process is back in the agent's namespace after, the main thread too.
func TestNamespaceHostsLeaveNoThread(t *testing.T) {
	srv, c := testServer(t)
	root := strings.TrimSpace(testSh(t, c, "", "readlink /proc/self/ns/net"))
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("h%d", i)
		testHost(t, c, name)
		srv.destroyHost(name)
	}
	testWaitFor(t, "every thread back in "+root, 5*time.Second, func() bool {
		tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
		for _, p := range tasks {
			if l, _ := os.Readlink(p); l != root && l != "" {
				return false
			}
		}
		return true
	})
	main, err := os.Readlink(fmt.Sprintf("/proc/self/task/%d/ns/net", os.Getpid()))
	require.NoError(t, err)
	assert.Equal(t, root, main, "the main thread")
}

// testShortCtx is a context with its own, shorter, timeout.
func testShortCtx(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(testCtx(t), d)
}
