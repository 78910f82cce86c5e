package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testUndoSh is a /bin/sh -c argv, as lnsttest.Undo sends.
func testUndoSh(cmd string) []string { return []string{"/bin/sh", "-c", cmd} }

func TestUndoCommandOfChecksRequest(t *testing.T) {
	ok := &pb.StartJobRequest{Host: "h1", Group: "g", Argv: []string{"true"}, UndoArgv: testUndoSh("ovs-vsctl del-br br9"),
		UndoTimeout: durationpb.New(5 * time.Second)}
	u, err := undoCommandOf(ok)
	require.NoError(t, err)
	assert.Equal(t, undo{Group: "g", Host: "h1", Op: opRunCommand, Argv: testUndoSh("ovs-vsctl del-br br9"), Timeout: 5 * time.Second}, u)
	assert.Equal(t, `run undo command "ovs-vsctl del-br br9" on host "h1"`, u.String())
	u.Host, u.Argv = "", []string{"ip", "link", "del", "x"}
	assert.Equal(t, `run undo command "ip link del x" on the agent's own host`, u.String())

	for _, tc := range []struct {
		name string
		req  *pb.StartJobRequest
		want string
	}{
		{"no group", &pb.StartJobRequest{UndoArgv: []string{"true"}}, "needs a group"},
		{"empty command", &pb.StartJobRequest{Group: "g", UndoArgv: []string{"", "x"}}, "its command is empty"},
		{"NUL", &pb.StartJobRequest{Group: "g", UndoArgv: []string{"rm", "a\x00b"}}, "NUL"},
		{"too long", &pb.StartJobRequest{Group: "g", UndoArgv: []string{"echo", strings.Repeat("x", maxUndoArgv+1)}}, "more than 65536"},
		{"negative timeout", &pb.StartJobRequest{Group: "g", UndoArgv: []string{"true"}, UndoTimeout: durationpb.New(-time.Second)}, "undo_timeout -1s"},
		{"long timeout", &pb.StartJobRequest{Group: "g", UndoArgv: []string{"true"}, UndoTimeout: durationpb.New(time.Hour)}, "undo_timeout 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := undoCommandOf(tc.req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// testUndoServer is an in-process agent with an on-disk journal, and a
// directory for the marks its jobs and undo commands leave. Jobs on the
// agent's own host run in this machine's namespace: they only write
// files there.
func testUndoServer(t *testing.T) (pb.AgentClient, string, string) {
	t.Helper()
	journal := testJournalPath(t)
	_, c := testServerOpts(t, Options{Lab: true, JournalPath: journal})
	return c, journal, t.TempDir()
}

func testReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}

// TestUndoCommandJournaledAheadAndRestored: a job's undo command is in the
// on-disk journal before the job starts (the job reads it there), runs at
// Restore of its group, newest first with the group's other undos (a
// background job's stop first), and is then done on disk.
func TestUndoCommandJournaledAheadAndRestored(t *testing.T) {
	c, journal, dir := testUndoServer(t)
	ctx := testCtx(t)
	log := filepath.Join(dir, "log")
	r, err := c.RunJob(ctx, &pb.StartJobRequest{Group: "g", Argv: testUndoSh("grep -a -o '\"Op\":\"run-command\"' " + journal),
		UndoArgv: testUndoSh("echo 1 >> " + log)})
	require.NoError(t, err)
	assert.Equal(t, `"Op":"run-command"`+"\n", string(r.Stdout), "the undo is on disk before the job starts")
	assert.NotZero(t, r.UndoSeq)
	first := r.UndoSeq

	r, err = c.RunJob(ctx, &pb.StartJobRequest{Group: "g", Argv: []string{"true"}, UndoArgv: testUndoSh("echo 2 >> " + log)})
	require.NoError(t, err)
	assert.Greater(t, r.UndoSeq, first)
	pidFile := filepath.Join(dir, "pid")
	s, err := c.StartJob(ctx, &pb.StartJobRequest{Group: "g", Argv: testUndoSh("echo $$ > " + pidFile + "; exec sleep 600"),
		UndoArgv: testUndoSh("kill -0 $(cat " + pidFile + ") 2>/dev/null && echo job-alive >> " + log + "; echo 3 >> " + log)})
	require.NoError(t, err)
	assert.NotZero(t, s.UndoSeq)
	assert.Greater(t, s.Seq, s.UndoSeq, "the job's stop is journaled after its undo, so it comes first")
	testWaitFor(t, "the background job's pid", 10*time.Second, func() bool { return testReadFile(t, pidFile) != "" })
	assert.Empty(t, testReadFile(t, log), "no undo ran before Restore")

	rr, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Empty(t, rr.Errors)
	assert.Equal(t, int32(4), rr.Undone)
	assert.Equal(t, "3\n2\n1\n", testReadFile(t, log), "newest first, the job stopped before its undo")
	assert.Equal(t, "LNSTJRNL\x01\x00\x00\x00", testReadFile(t, journal), "every undo is done on disk")
}

// TestUndoCommandOfJobThatCannotStart: a job that cannot start at all
// drops its undo, on disk too.
func TestUndoCommandOfJobThatCannotStart(t *testing.T) {
	c, journal, dir := testUndoServer(t)
	ctx := testCtx(t)
	mark := filepath.Join(dir, "mark")
	r, err := c.RunJob(ctx, &pb.StartJobRequest{Group: "g", Argv: []string{"no-such-command-lnst"}, UndoArgv: testUndoSh("touch " + mark)})
	require.NoError(t, err)
	assert.Equal(t, int32(127), r.ExitCode)
	assert.Zero(t, r.UndoSeq)
	assert.Equal(t, "LNSTJRNL\x01\x00\x00\x00", testReadFile(t, journal), "nothing left on disk")
	r, err = c.RunJob(ctx, &pb.StartJobRequest{Group: "g", Argv: []string{"true"}, Dir: filepath.Join(dir, "no-such-dir"), UndoArgv: testUndoSh("touch " + mark)})
	require.NoError(t, err)
	assert.Equal(t, int32(126), r.ExitCode)
	assert.Zero(t, r.UndoSeq)
	rr, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Zero(t, rr.Undone)
	assert.NoFileExists(t, mark)

	_, err = c.RunJob(ctx, &pb.StartJobRequest{Argv: []string{"true"}, UndoArgv: testUndoSh("touch " + mark)})
	testCode(t, err, codes.InvalidArgument, "undo_argv needs a group")
	_, err = c.StartJob(ctx, &pb.StartJobRequest{Group: "g", Argv: []string{"true"}, UndoArgv: []string{"true"}, UndoTimeout: durationpb.New(time.Hour)})
	testCode(t, err, codes.InvalidArgument, "undo_timeout")
}

// TestUndoCommandInItsHost: the undo command runs in the job's namespace
// host; one that fails or outlives its timeout is a Restore error naming
// the host, the command, how it ended and its output's tail; the group's
// other undos still run.
func TestUndoCommandInItsHost(t *testing.T) {
	c, _, dir := testUndoServer(t)
	testHost(t, c, "u1")
	ctx := testCtx(t)
	hostNs := strings.TrimSpace(testSh(t, c, "u1", "readlink /proc/self/ns/net"))
	nsFile := filepath.Join(dir, "ns")
	for _, undoCmd := range []string{"readlink /proc/self/ns/net > " + nsFile, "echo broken-undo >&2; echo some-stdout; exit 3", "sleep 30"} {
		req := &pb.StartJobRequest{Host: "u1", Group: "g", Argv: []string{"true"}, UndoArgv: testUndoSh(undoCmd)}
		if undoCmd == "sleep 30" {
			req.UndoTimeout = durationpb.New(200 * time.Millisecond)
		}
		_, err := c.RunJob(ctx, req)
		require.NoError(t, err)
	}
	rr, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	require.Len(t, rr.Errors, 2, "%q", rr.Errors)
	assert.Equal(t, `run undo command "sleep 30" on host "u1": timed out after 200ms and was killed`, rr.Errors[0])
	assert.Equal(t, `run undo command "echo broken-undo >&2; echo some-stdout; exit 3" on host "u1": exit code 3; stderr: "broken-undo\n"; stdout: "some-stdout\n"`, rr.Errors[1])
	assert.Equal(t, hostNs+"\n", testReadFile(t, nsFile), "the undo ran in the job's host")
}

// TestUndoCommandReplayed: an agent started on a journal a crashed agent
// left runs the undo commands in it on its own host; one of a namespace
// host, which died with that agent, is dropped.
func TestUndoCommandReplayed(t *testing.T) {
	dir := t.TempDir()
	journal := testJournalPath(t)
	jf, _ := testOpenJournal(t, journal, false)
	own, gone := filepath.Join(dir, "own"), filepath.Join(dir, "gone")
	require.NoError(t, jf.add(undo{Seq: 1, Group: "g", Op: opRunCommand, Argv: testUndoSh("echo replayed > " + own)}))
	require.NoError(t, jf.add(undo{Seq: 2, Group: "g", Host: "h1", Op: opRunCommand, Argv: testUndoSh("touch " + gone)}))
	require.NoError(t, jf.close())

	_, _ = testServerOpts(t, Options{Lab: true, JournalPath: journal})
	assert.Equal(t, "replayed\n", testReadFile(t, own))
	assert.NoFileExists(t, gone)
	assert.Equal(t, "LNSTJRNL\x01\x00\x00\x00", testReadFile(t, journal))
}
