package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// testNetns is a network namespace, and a mount namespace with that
// network namespace's sysfs on /sys, held by a sleeping process: agents
// started in it change nothing of this machine's own namespace.
type testNetns struct{ pid int }

func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make namespaces")
	}
	cmd := exec.Command("unshare", "--net", "--mount", "sh", "-c", "mount -t sysfs sysfs /sys && ip link set lo up && echo ready && exec sleep 600")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("requires unshare (util-linux) to make a private namespace: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the namespace holder did not start; its stderr: %s", &stderr)
	require.Equal(t, "ready\n", line)
	return &testNetns{pid: cmd.Process.Pid}
}

// command makes a command that runs argv in the namespaces.
func (n *testNetns) command(argv ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{
		fmt.Sprintf("--net=/proc/%d/ns/net", n.pid),
		fmt.Sprintf("--mount=/proc/%d/ns/mnt", n.pid),
	}, argv...)...)
}

// sh runs a shell command line in the namespaces and returns its stdout.
func (n *testNetns) sh(t *testing.T, line string) string {
	t.Helper()
	out, err := n.command("sh", "-c", line).Output()
	require.NoError(t, err, "run %q in the namespace", line)
	return string(out)
}

// syncBuffer is a buffer a process writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testAgent is an agent process in a testNetns.
type testAgent struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
	client pb.AgentClient
}

// startAgent starts this test binary as the agent, serving on sock with
// journal, in the namespaces, and dials it. Cleanup kills it if it runs.
func (n *testNetns) startAgent(t *testing.T, sock, journal string) *testAgent {
	t.Helper()
	a := &testAgent{stderr: &syncBuffer{}, exited: make(chan error, 1)}
	a.cmd = n.command(os.Args[0], "serve", "--listen", "unix://"+sock, "--journal", journal, "--log-level", "info")
	a.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	a.cmd.Stderr = a.stderr
	require.NoError(t, a.cmd.Start())
	go func() { a.exited <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill()
			<-a.exited
		}
	})
	conn, err := agentconn.Dial(testCtx(t), "unix://"+sock, agentconn.DialOptions{})
	require.NoError(t, err, "dial the agent; its stderr: %s", a.stderr)
	t.Cleanup(func() { conn.Close() })
	a.client = pb.NewAgentClient(conn)
	hello, err := a.client.Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err, "the agent's stderr: %s", a.stderr)
	require.Equal(t, int32(a.cmd.Process.Pid), hello.Pid, "nsenter execs the agent")
	return a
}

// stop signals the agent and waits for its exit.
func (a *testAgent) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	require.NoError(t, a.cmd.Process.Signal(sig))
	select {
	case err := <-a.exited:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not exit within 30s of %v; its stderr: %s", sig, a.stderr)
		return nil
	}
}

// testPoll polls cond until it holds or timeout passes.
func testPoll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// journalHeader is an empty journal: its header alone.
const journalHeader = "LNSTJRNL\x01\x00\x00\x00"

// TestCrashRecovery kills an agent that made changes (SIGKILL: it undoes
// nothing) and starts another on the same journal, which takes the changes
// back before it serves. With a torn journal (the file cut within its last
// record), the whole records are taken back and the torn one is dropped.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		name string
		torn bool
	}{{"whole journal", false}, {"torn journal", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTestNetns(t)
			dir := t.TempDir()
			sock, journal := filepath.Join(dir, "a.sock"), filepath.Join(dir, "journal")
			fwd := func() string { return strings.TrimSpace(ns.sh(t, "cat /proc/sys/net/ipv4/ip_forward")) }
			links := func() string { return ns.sh(t, "ip -o link") }
			require.Equal(t, "0", fwd())

			a := ns.startAgent(t, sock, journal)
			ctx := testCtx(t)
			c := a.client
			_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Group: "g", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}})
			require.NoError(t, err)
			_, err = c.SetLink(ctx, &pb.SetLinkRequest{Group: "g", Name: "v0", Mtu: proto.Int32(1400)})
			require.NoError(t, err)
			_, err = c.AddAddr(ctx, &pb.AddrRequest{Group: "g", Name: "v0", Cidr: "198.18.30.1/24"})
			require.NoError(t, err)
			_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Group: "g", Kind: "sysctl", Key: "net.ipv4.ip_forward", Value: "1"})
			require.NoError(t, err)

			err = a.stop(t, syscall.SIGKILL)
			require.ErrorContains(t, err, "killed")
			assert.Contains(t, links(), "v0@v1: ", "the veth outlives the killed agent")
			assert.Contains(t, links(), "mtu 1400 ", "the MTU too")
			assert.Contains(t, ns.sh(t, "ip -o addr show dev v0"), "198.18.30.1/24")
			assert.Equal(t, "1", fwd())
			st, err := os.Stat(journal)
			require.NoError(t, err)
			require.Greater(t, st.Size(), int64(len(journalHeader)), "the journal holds the changes")
			if tc.torn {
				// Cut the last record (the ip_forward write) in its middle.
				require.NoError(t, os.Truncate(journal, st.Size()-10))
			}

			b := ns.startAgent(t, sock, journal)
			testPoll(t, "the veth to go", 5*time.Second, func() bool { return !strings.Contains(links(), "v0") })
			assert.NotContains(t, links(), "v1")
			if tc.torn {
				assert.Equal(t, "1", fwd(), "the torn record's change is not known, so stays")
			} else {
				testPoll(t, "ip_forward back to 0", 5*time.Second, func() bool { return fwd() == "0" })
			}
			got, err := os.ReadFile(journal)
			require.NoError(t, err)
			assert.Equal(t, journalHeader, string(got), "the journal is compacted")
			// The new agent serves: its own changes are journaled afresh.
			r, err := b.client.WriteValue(testCtx(t), &pb.WriteValueRequest{Group: "g2", Kind: "sysctl", Key: "net.ipv4.ip_default_ttl", Value: "33"})
			require.NoError(t, err)
			assert.NotZero(t, r.Seq)

			require.NoError(t, b.stop(t, syscall.SIGTERM), "its stderr: %s", b.stderr)
			assert.Equal(t, "64", strings.TrimSpace(ns.sh(t, "cat /proc/sys/net/ipv4/ip_default_ttl")), "the new agent undid its own change on exit")
			log := b.stderr.String()
			entries := 4
			if tc.torn {
				entries = 3
				assert.Contains(t, log, "cut away the torn tail a crash left")
				assert.NotContains(t, log, "ip_forward")
			} else {
				assert.Contains(t, log, `undone: undo="write sysctl net.ipv4.ip_forward = \"0\" back on the agent's own host"`)
			}
			assert.Contains(t, log, fmt.Sprintf("a previous agent left changes: taking them back: journal=%s entries=%d", journal, entries))
			assert.Contains(t, log, `undone: undo="delete link v0 on the agent's own host"`)
			assert.Contains(t, log, `undone: undo="remove address 198.18.30.1/24 from v0`)
			assert.Contains(t, log, `undone: undo="restore settings of link v0`)
			assert.Less(t, strings.Index(log, "remove address"), strings.Index(log, "delete link v0"), "newest first")
			got, err = os.ReadFile(journal)
			require.NoError(t, err)
			assert.Equal(t, journalHeader, string(got), "the journal is empty after a clean exit")
		})
	}
}

// TestCrashRecoveryUndoCommand: a job's undo command (lnsttest.Undo) is
// run by the agent started on the journal of one killed with SIGKILL, on
// its own host, before that agent serves; the undo command of a job that
// could not start is not.
func TestCrashRecoveryUndoCommand(t *testing.T) {
	ns := newTestNetns(t)
	dir := t.TempDir()
	sock, journal := filepath.Join(dir, "a.sock"), filepath.Join(dir, "journal")
	links := func() string { return ns.sh(t, "ip -o link") }
	a := ns.startAgent(t, sock, journal)
	ctx := testCtx(t)
	r, err := a.client.RunJob(ctx, &pb.StartJobRequest{Group: "g", Argv: []string{"/bin/sh", "-c", "ip link add crundo0 type bridge"},
		UndoArgv: []string{"/bin/sh", "-c", "ip link del crundo0"}})
	require.NoError(t, err)
	require.Zero(t, r.ExitCode, "stderr: %s", r.Stderr)
	require.NotZero(t, r.UndoSeq)
	notRun := filepath.Join(dir, "not-run")
	r, err = a.client.RunJob(ctx, &pb.StartJobRequest{Group: "g", Argv: []string{"no-such-command-lnst"},
		UndoArgv: []string{"touch", notRun}})
	require.NoError(t, err)
	require.Equal(t, int32(127), r.ExitCode)

	err = a.stop(t, syscall.SIGKILL)
	require.ErrorContains(t, err, "killed")
	require.Contains(t, links(), "crundo0: ", "the bridge outlives the killed agent")

	b := ns.startAgent(t, sock, journal)
	assert.NotContains(t, links(), "crundo0", "the undo command ran before the new agent served")
	assert.NoFileExists(t, notRun)
	got, err := os.ReadFile(journal)
	require.NoError(t, err)
	assert.Equal(t, journalHeader, string(got), "the journal is compacted")
	require.NoError(t, b.stop(t, syscall.SIGTERM), "its stderr: %s", b.stderr)
	assert.Contains(t, b.stderr.String(), `undone: undo="run undo command \"ip link del crundo0\" on the agent's own host"`)
}

// testJournalRecord frames one record of an on-disk journal (see
// agent/journalfile.go): length, CRC32-C, JSON payload.
func testJournalRecord(payload string) string {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum([]byte(payload), crc32.MakeTable(crc32.Castagnoli)))
	return string(b[:]) + payload
}

// TestReplayBeforeTLS starts an agent on a journal a previous agent left
// (ip_forward written to 1) with TLS files it cannot load, as when its
// certificate expired or broke: it undoes the journal, then fails naming
// the file.
func TestReplayBeforeTLS(t *testing.T) {
	ns := newTestNetns(t)
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal")
	ns.sh(t, "echo 1 > /proc/sys/net/ipv4/ip_forward")
	require.NoError(t, os.WriteFile(journal, []byte(journalHeader+testJournalRecord(
		`{"op":"add","entry":{"Seq":1,"Group":"g","Op":"write-value","ValueKind":"sysctl","Key":"net.ipv4.ip_forward","Value":"0"}}`)), 0o600))
	certs := filepath.Join(dir, "certs")
	require.NoError(t, agentconn.GenerateCerts(certs, []string{"127.0.0.1"}, nil, time.Hour))
	broken := filepath.Join(certs, "127.0.0.1.pem")
	require.NoError(t, os.WriteFile(broken, []byte("not a certificate"), 0o600))

	cmd := ns.command(os.Args[0], "serve", "--listen", "127.0.0.1:7999", "--journal", journal,
		"--ca", filepath.Join(certs, "ca.pem"), "--cert", broken, "--key", filepath.Join(certs, "127.0.0.1-key.pem"))
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the agent must fail on its TLS files; stderr: %s", &stderr)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, stderr.String(), "127.0.0.1.pem")
	assert.Contains(t, stderr.String(), `undone: undo="write sysctl net.ipv4.ip_forward = \"0\" back on the agent's own host"`)
	assert.Equal(t, "0", strings.TrimSpace(ns.sh(t, "cat /proc/sys/net/ipv4/ip_forward")), "the journal was undone")
	got, err := os.ReadFile(journal)
	require.NoError(t, err)
	assert.Equal(t, journalHeader, string(got), "the journal is compacted")
}
