package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/launch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestRunJobTrue(t *testing.T) {
	_, c := testServer(t)
	before := time.Now()
	r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Argv: []string{"/bin/true"}, Desc: "true"})
	require.NoError(t, err)
	assert.Zero(t, r.ExitCode)
	assert.Zero(t, r.Signal)
	assert.Empty(t, r.Stdout)
	assert.Empty(t, r.Stderr)
	assert.Empty(t, r.Error)
	assert.False(t, r.Killed)
	assert.False(t, r.TimedOut)
	assert.NotZero(t, r.Id)
	start := r.Start.AsTime()
	assert.False(t, start.Before(before.Add(-time.Second)), "start %v is before the call at %v", start, before)
	assert.WithinDuration(t, time.Now(), start, 10*time.Second)
	assert.Greater(t, r.Duration.AsDuration(), time.Duration(0))
}

func TestRunJobExitCodeAndOutput(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	for _, host := range []string{"", "h1"} {
		r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Host: host, Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}})
		require.NoError(t, err, "host %q", host)
		assert.Equal(t, int32(3), r.ExitCode, "host %q", host)
		assert.Equal(t, "out\n", string(r.Stdout), "host %q", host)
		assert.Equal(t, "err\n", string(r.Stderr), "host %q", host)
		assert.Zero(t, r.Signal)
		assert.Empty(t, r.Error)
	}
	// PATH lookup, arguments passed as they are (no shell), large output.
	r := testRun(t, c, "", "printf", "%s|", "a b", "$HOME", "")
	assert.Equal(t, "a b|$HOME||", string(r.Stdout))
	r = testRun(t, c, "", "head", "-c", "1000000", "/dev/zero")
	assert.Len(t, r.Stdout, 1000000)
}

func TestRunJobEnvAndDir(t *testing.T) {
	_, c := testServer(t)
	t.Setenv(launch.LabSocketEnv, "not-for-jobs")
	t.Setenv("LNST_TEST_PASSED", "yes")
	dir := t.TempDir()
	r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{
		Argv: []string{"/bin/sh", "-c", `echo "$FOO"; pwd; env`},
		Env:  []string{"FOO=bar baz"},
		Dir:  dir,
	})
	require.NoError(t, err)
	require.Zero(t, r.ExitCode, "stderr %q", r.Stderr)
	lines := strings.Split(string(r.Stdout), "\n")
	assert.Equal(t, "bar baz", lines[0])
	assert.Equal(t, dir, lines[1])
	assert.Contains(t, lines, "LNST_TEST_PASSED=yes", "jobs get the agent's environment")
	assert.NotContains(t, string(r.Stdout), launch.LabSocketEnv, "jobs do not get the agent's own variables")

	r, err = c.RunJob(testCtx(t), &pb.StartJobRequest{Argv: []string{"true"}, Dir: filepath.Join(dir, "nosuch")})
	require.NoError(t, err)
	assert.Equal(t, int32(126), r.ExitCode, "a job that cannot start")
	assert.NotEmpty(t, r.Error)
}

func TestRunJobMissingCommand(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	for _, host := range []string{"", "h1"} {
		for _, cmd := range []string{"lnst-no-such-command", "/nonexistent/lnst-cmd"} {
			r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Host: host, Argv: []string{cmd, "x"}})
			require.NoError(t, err, "a missing command is a job result, not a call error")
			assert.Equal(t, int32(127), r.ExitCode)
			assert.Contains(t, r.Error, cmd)
			assert.Contains(t, string(r.Stderr), cmd)
			assert.Empty(t, r.Stdout)
		}
	}
}

func TestJobIDsPerHost(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	testHost(t, c, "h2")
	ids := map[string][]int64{}
	for i := 0; i < 3; i++ {
		for _, h := range []string{"", "h1", "h2"} {
			if h == "h2" && i > 0 {
				continue
			}
			r := testRun(t, c, h, "true")
			ids[h] = append(ids[h], r.Id)
		}
	}
	j, err := c.StartJob(testCtx(t), &pb.StartJobRequest{Host: "h1", Argv: []string{"true"}})
	require.NoError(t, err)
	ids["h1"] = append(ids["h1"], j.Id)
	r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Host: "h1", Argv: []string{"lnst-no-such-command"}})
	require.NoError(t, err)
	ids["h1"] = append(ids["h1"], r.Id)

	assert.Equal(t, []int64{1, 2, 3}, ids[""])
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, ids["h1"], "StartJob and jobs that fail to start count too")
	assert.Equal(t, []int64{1}, ids["h2"], "each host has its own ids")
}

func TestStartAndWaitJob(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: "g", Argv: []string{"/bin/sh", "-c", "sleep 0.3; echo done; exit 7"}})
	require.NoError(t, err)
	assert.NotZero(t, j.Seq, "a started job is journaled")

	short, cancel := testShortCtx(t, 50*time.Millisecond)
	_, err = c.WaitJob(short, &pb.JobRef{Host: "h1", Id: j.Id})
	cancel()
	testCode(t, err, codes.DeadlineExceeded)

	r, err := c.WaitJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id})
	require.NoError(t, err)
	assert.Equal(t, j.Id, r.Id)
	assert.Equal(t, int32(7), r.ExitCode)
	assert.Equal(t, "done\n", string(r.Stdout))
	assert.GreaterOrEqual(t, r.Duration.AsDuration(), 300*time.Millisecond)

	// Waiting again gives the same result.
	r2, err := c.WaitJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id})
	require.NoError(t, err)
	assert.Equal(t, r.ExitCode, r2.ExitCode)
	assert.Equal(t, r.Stdout, r2.Stdout)

	_, err = c.WaitJob(ctx, &pb.JobRef{Host: "h1", Id: 999})
	testCode(t, err, codes.NotFound, "999")
	_, err = c.WaitJob(ctx, &pb.JobRef{Host: "", Id: j.Id})
	testCode(t, err, codes.NotFound, "no job 1")
	_, err = c.KillJob(ctx, &pb.KillJobRequest{Host: "h1", Id: 999, Signal: 9})
	testCode(t, err, codes.NotFound, "999")
	_, err = c.KillJob(ctx, &pb.KillJobRequest{Host: "h1", Id: j.Id, Signal: 9})
	assert.NoError(t, err, "killing a job that ended does nothing")
}

func TestKillJobKillsProcessGroup(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	for _, host := range []string{"", "h1"} {
		t.Run("host "+host, func(t *testing.T) {
			ctx := testCtx(t)
			j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: host, Argv: []string{"sh", "-c", "sleep 100 & sleep 100 & echo $$; wait"}})
			require.NoError(t, err)
			pgid := testFirstLine(t, c, host, j.Id)
			testWaitFor(t, "the job's three processes", 5*time.Second, func() bool { return len(testGroup(t, pgid)) == 3 })
			assert.Equal(t, pgid, testGroup(t, pgid)[0].pgrp, "the job leads its own group")
			assert.NotEqual(t, syscall.Getpgrp(), pgid, "the job has a group of its own")

			_, err = c.KillJob(ctx, &pb.KillJobRequest{Host: host, Id: j.Id, Signal: int32(unix.SIGTERM)})
			require.NoError(t, err)
			r, err := c.WaitJob(ctx, &pb.JobRef{Host: host, Id: j.Id})
			require.NoError(t, err)
			assert.True(t, r.Killed)
			assert.False(t, r.TimedOut)
			assert.Equal(t, int32(unix.SIGTERM), r.Signal)
			assert.Equal(t, int32(-1), r.ExitCode)
			testGroupGone(t, pgid)
		})
	}
}

// TestKillJobSignalsEveryProcess has the shell trap the signal and wait for
// its children: the job ends only if the signal reached them too.
func TestKillJobSignalsEveryProcess(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Argv: []string{"sh", "-c", `trap 'echo trapped' TERM; sleep 100 & sleep 100 & echo $$; wait; wait; echo done`}})
	require.NoError(t, err)
	pgid := testFirstLine(t, c, "", j.Id)
	// Until it execs sleep, a child of the shell would take the signal
	// with the shell's trap.
	testWaitFor(t, "the job's two sleeps", 5*time.Second, func() bool {
		n := 0
		for _, p := range testGroup(t, pgid) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pid)); string(comm) == "sleep\n" {
				n++
			}
		}
		return n == 2
	})
	_, err = c.KillJob(ctx, &pb.KillJobRequest{Id: j.Id, Signal: int32(unix.SIGTERM)})
	require.NoError(t, err)
	short, cancel := testShortCtx(t, 10*time.Second)
	defer cancel()
	r, err := c.WaitJob(short, &pb.JobRef{Id: j.Id})
	require.NoError(t, err, "the children did not get the signal")
	assert.True(t, r.Killed)
	assert.Zero(t, r.ExitCode)
	assert.Zero(t, r.Signal)
	assert.Contains(t, string(r.Stdout), "trapped\ndone\n")
	testGroupGone(t, pgid)
}

func TestJobTimeout(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	const timeout = 300 * time.Millisecond
	r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Host: "h1", Argv: []string{"sh", "-c", "sleep 30 & echo started; sleep 30"}, Timeout: durationpb.New(timeout)})
	require.NoError(t, err)
	assert.True(t, r.TimedOut)
	assert.False(t, r.Killed, "killed by its timeout, not by KillJob")
	assert.Equal(t, int32(unix.SIGKILL), r.Signal)
	assert.Equal(t, int32(-1), r.ExitCode)
	assert.Equal(t, "started\n", string(r.Stdout))
	d := r.Duration.AsDuration()
	assert.GreaterOrEqual(t, d, timeout)
	assert.Less(t, d, timeout+time.Second, "a timed-out job ends soon after its timeout")

	// A job that ends in time is not marked.
	r, err = c.RunJob(testCtx(t), &pb.StartJobRequest{Host: "h1", Argv: []string{"true"}, Timeout: durationpb.New(5 * time.Second)})
	require.NoError(t, err)
	assert.False(t, r.TimedOut)
	assert.Zero(t, r.ExitCode)
}

func TestStreamJobIncremental(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	fifo := filepath.Join(t.TempDir(), "gate")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{"sh", "-c", `echo one; read x < "$0"; echo two >&2; echo three`, fifo}})
	require.NoError(t, err)

	stream, err := c.StreamJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id})
	require.NoError(t, err)
	o, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, pb.JobOutput_STDOUT, o.Stream)
	assert.Equal(t, "one\n", string(o.Data), "output arrives while the job runs")

	// The job is blocked on the gate: open it.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("go\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var out, errOut bytes.Buffer
	for {
		o, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if o.Stream == pb.JobOutput_STDERR {
			errOut.Write(o.Data)
		} else {
			out.Write(o.Data)
		}
	}
	assert.Equal(t, "three\n", out.String())
	assert.Equal(t, "two\n", errOut.String())

	// A stream of an ended job replays it all and ends.
	stream, err = c.StreamJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id})
	require.NoError(t, err)
	var all []string
	for {
		o, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		all = append(all, o.Stream.String()+":"+string(o.Data))
	}
	assert.Equal(t, "STDOUT:one\n", all[0])
	assert.ElementsMatch(t, []string{"STDERR:two\n", "STDOUT:three\n"}, all[1:])

	stream, err = c.StreamJob(ctx, &pb.JobRef{Host: "h1", Id: 999})
	require.NoError(t, err)
	_, err = stream.Recv()
	testCode(t, err, codes.NotFound, "999")
}

func TestRestoreStopsJobs(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: "g", Argv: []string{"sh", "-c", "sleep 100 & echo $$; wait"}})
	require.NoError(t, err)
	pgid := testFirstLine(t, c, "h1", j.Id)
	other, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: "other", Argv: []string{"sh", "-c", "echo $$; exec sleep 100"}})
	require.NoError(t, err)
	otherPID := testFirstLine(t, c, "h1", other.Id)
	testWaitFor(t, "the job's two processes", 5*time.Second, func() bool { return len(testGroup(t, pgid)) == 2 })

	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), r.Undone)
	assert.Empty(t, r.Errors)
	testGroupGone(t, pgid)
	assert.True(t, testAlive(t, otherPID), "another group's job runs on")
	_, err = c.WaitJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id})
	testCode(t, err, codes.NotFound, "no job")
}

// TestInternalJobIDs checks that a job the controller runs for itself
// does not take a number from the recipe's jobs on the host.
func TestInternalJobIDs(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	ctx := testCtx(t)
	in, err := c.RunJob(ctx, &pb.StartJobRequest{Host: "h1", Group: "g", Argv: []string{"true"}, Internal: true})
	require.NoError(t, err)
	r, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: "g", Argv: []string{"true"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.Id, "the first recipe job is job 1")
	assert.Equal(t, int64(-1), in.Id, "internal jobs count down from -1")
}
