// Package sockprobe lets a test check who can reach an agent's unix
// sockets, as an attacker on the same machine would: Probe re-executes the
// test binary as another user, and that child reads /proc/net/unix, which
// everyone may read, and tries the agent's Hello and RunJob (/usr/bin/id)
// on every unix socket whose name contains "lnst" and on every address it
// was given.
//
// A test binary using it calls Main first in its TestMain. The tests that
// probe run as root (they set the child's credentials).
package sockprobe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// childEnv makes a test binary a probe child; its value is the request,
// JSON.
const childEnv = "LNST_SOCKPROBE_CHILD"

// Nobody is the uid and gid of user nobody on Linux, and the overflow uid
// the kernel shows for a user a user namespace does not map.
const Nobody = 65534

// request is what Probe asks of the child.
type request struct {
	// Match selects the sockets of /proc/net/unix to probe by name.
	Match string
	// Addrs are probed whatever /proc/net/unix says: socket paths, or
	// "@name" for an abstract socket.
	Addrs []string
}

// Result is what the child found at one socket. An empty error string
// means the step succeeded.
type Result struct {
	// Addr is the socket: its path, or "@name" for an abstract socket.
	Addr string
	// Inode is the socket's inode, 0 when /proc/net/unix did not list it.
	Inode uint64
	// Connect is the error of a plain connect(2) to the socket.
	Connect string
	// Hello and RunJob are the errors of the agent's calls; RunJob runs
	// /usr/bin/id and Output is what it printed.
	Hello, RunJob, Output string
}

// Reached reports whether any agent call succeeded.
func (r Result) Reached() bool { return r.Hello == "" || r.RunJob == "" }

// Socket is one unix socket of /proc/net/unix.
type Socket struct {
	Inode     uint64
	Path      string // "@name" for an abstract socket, "" for an unnamed one
	Listening bool
}

// UnixSockets lists the unix sockets of this network namespace, as
// /proc/net/unix shows them to everyone.
func UnixSockets() ([]Socket, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Socket
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode [Path]
		fs := strings.Fields(sc.Text())
		if len(fs) < 7 {
			continue
		}
		flags, _ := strconv.ParseUint(fs[3], 16, 32)
		inode, _ := strconv.ParseUint(fs[6], 10, 64)
		s := Socket{Inode: inode, Listening: flags&0x10000 != 0} // __SO_ACCEPTCON
		if len(fs) > 7 {
			s.Path = fs[7]
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// ListeningOf lists the listening unix sockets process pid holds open.
func ListeningOf(pid int) ([]Socket, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	held := map[uint64]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"), 10, 64)
		if err == nil {
			held[n] = true
		}
	}
	all, err := UnixSockets()
	if err != nil {
		return nil, err
	}
	var out []Socket
	for _, s := range all {
		if held[s.Inode] && s.Listening {
			out = append(out, s)
		}
	}
	return out, nil
}

// AsUser makes cmd, which runs this test binary, run as uid and gid, from
// a copy of the binary in a directory everyone may read (the go tool
// builds test binaries in a directory private to root). The copy is
// removed at the test's end.
func AsUser(t testing.TB, cmd *exec.Cmd, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a process as another user requires root")
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "sockprobe-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Path, cmd.Args[0], cmd.Dir = bin, bin, dir
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	cmd.SysProcAttr.Setpgid = true
}

// Probe runs the probe as uid and gid: every socket of /proc/net/unix
// whose name contains "lnst", and addrs. It returns what the child found
// at each, and fails the test if the child could not run.
func Probe(t testing.TB, uid, gid int, addrs ...string) []Result {
	t.Helper()
	req, _ := json.Marshal(request{Match: "lnst", Addrs: addrs})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	AsUser(t, cmd, uid, gid)
	cmd.Env = append(os.Environ(), childEnv+"="+string(req))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe as uid %d: %v; its stderr:\n%s", uid, err, stderr.String())
	}
	var res []Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("probe as uid %d: its report %q: %v; its stderr:\n%s", uid, out, err, stderr.String())
	}
	return res
}

// Main runs the probe and exits when this process is a probe child; else
// it returns. Call it first in TestMain.
func Main() {
	req := os.Getenv(childEnv)
	if req == "" {
		return
	}
	os.Exit(child(req, os.Stdout))
}

func child(reqJSON string, stdout io.Writer) int {
	var req request
	if err := json.Unmarshal([]byte(reqJSON), &req); err != nil {
		fmt.Fprintf(os.Stderr, "sockprobe: request %q: %v\n", reqJSON, err)
		return 2
	}
	inodes := map[string]uint64{}
	var order []string
	add := func(addr string, inode uint64) {
		if _, ok := inodes[addr]; !ok {
			order = append(order, addr)
		}
		if inode != 0 {
			inodes[addr] = inode
		} else if _, ok := inodes[addr]; !ok {
			inodes[addr] = 0
		}
	}
	socks, err := UnixSockets()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sockprobe: %v\n", err)
		return 2
	}
	for _, s := range socks {
		if s.Listening && req.Match != "" && strings.Contains(s.Path, req.Match) {
			add(s.Path, s.Inode)
		}
	}
	for _, a := range req.Addrs {
		add(a, 0)
	}
	res := []Result{}
	for _, a := range order {
		res = append(res, probe(a, inodes[a]))
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "sockprobe: %v\n", err)
		return 2
	}
	return 0
}

// errString is err's message, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probe tries the socket addr: a plain connect, then the agent's Hello
// and RunJob /usr/bin/id.
func probe(addr string, inode uint64) Result {
	r := Result{Addr: addr, Inode: inode}
	target, dialAddr := "unix:"+addr, addr
	if name, ok := strings.CutPrefix(addr, "@"); ok {
		target, dialAddr = "unix-abstract:"+name, "@"+name
	}
	c, err := net.DialTimeout("unix", dialAddr, 10*time.Second)
	if err == nil {
		c.Close()
	}
	r.Connect = errString(err)
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		r.Hello, r.RunJob = err.Error(), err.Error()
		return r
	}
	defer conn.Close()
	client := pb.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.Hello(ctx, &pb.HelloRequest{})
	r.Hello = errString(err)
	job, err := client.RunJob(ctx, &pb.StartJobRequest{Argv: []string{"/usr/bin/id"}})
	r.RunJob = errString(err)
	if err == nil {
		r.Output = string(job.Stdout)
		if r.Output == "" {
			r.Output = fmt.Sprintf("(exit %d, no output)", job.ExitCode)
		}
	}
	return r
}

// RequireRefused fails the test unless want, the listening sockets of the
// agent under test, is not empty, every one of want was probed and no
// agent call succeeded on any. What the probe reached at other processes'
// sockets is logged, not failed: other test binaries may run beside this
// one.
func RequireRefused(t testing.TB, res []Result, want []Socket) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the agent under test listens on no unix socket: nothing to probe")
	}
	for _, w := range want {
		var found *Result
		for i, r := range res {
			if (r.Inode != 0 && r.Inode == w.Inode) || (w.Path != "" && r.Addr == w.Path) {
				found = &res[i]
				break
			}
		}
		if found == nil {
			t.Errorf("the agent's socket %q (inode %d) was not probed; the probe saw %+v", w.Path, w.Inode, res)
			continue
		}
		if found.Reached() {
			t.Errorf("another user reached the agent at %q: Hello error %q, RunJob error %q, id printed %q", found.Addr, found.Hello, found.RunJob, found.Output)
		} else {
			t.Logf("refused at %q: connect %q; Hello %q; RunJob %q", found.Addr, found.Connect, found.Hello, found.RunJob)
		}
	}
	for _, r := range res {
		mine := false
		for _, w := range want {
			mine = mine || (r.Inode != 0 && r.Inode == w.Inode) || r.Addr == w.Path
		}
		if !mine && r.Reached() {
			t.Logf("note: the probe reached %q, not the agent under test", r.Addr)
		}
	}
}
