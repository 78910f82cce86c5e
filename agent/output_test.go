package agent

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSeq is what `seq 1 n` prints.
func testSeq(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestJobOutputPastMessageLimit: a job that writes more than gRPC's
// default 4 MiB message limit gets all its output back through
// RunJobStream and WaitJobStream, and RunJob and WaitJob, whose result is
// one message, return its tail marked truncated instead of failing.
func TestJobOutputPastMessageLimit(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	const n = 1_000_000 // 6.9 MB
	want := testSeq(n)
	cmd := fmt.Sprintf("seq 1 %d; echo err >&2", n)
	req := &pb.StartJobRequest{Argv: []string{"/bin/sh", "-c", cmd}}

	r, err := pb.RunJobWhole(ctx, c, req)
	require.NoError(t, err)
	assert.Zero(t, r.ExitCode)
	assert.Equal(t, len(want), len(r.Stdout))
	assert.True(t, string(r.Stdout) == want, "RunJobStream returns the whole stdout")
	assert.Equal(t, "err\n", string(r.Stderr))
	assert.False(t, r.StdoutTruncated || r.StderrTruncated)
	assert.Equal(t, int64(len(want)), r.StdoutSize)

	r, err = c.RunJob(ctx, req)
	require.NoError(t, err, "RunJob's result fits one message")
	assert.True(t, r.StdoutTruncated)
	assert.False(t, r.StderrTruncated)
	assert.Equal(t, int64(len(want)), r.StdoutSize)
	assert.Equal(t, resultOutputMax, len(r.Stdout))
	assert.True(t, strings.HasSuffix(want, string(r.Stdout)), "RunJob returns the tail")
	assert.Equal(t, "err\n", string(r.Stderr))

	for _, whole := range []bool{true, false} {
		j, err := c.StartJob(ctx, req)
		require.NoError(t, err)
		ref := &pb.JobRef{Id: j.Id}
		if whole {
			r, err = pb.WaitJobWhole(ctx, c, ref)
			require.NoError(t, err)
			assert.True(t, string(r.Stdout) == want, "WaitJobStream returns the whole stdout")
		} else {
			r, err = c.WaitJob(ctx, ref)
			require.NoError(t, err, "WaitJob's result fits one message")
			assert.True(t, r.StdoutTruncated)
			assert.True(t, strings.HasSuffix(want, string(r.Stdout)), "WaitJob returns the tail")
		}
	}
}

// TestJobOutputCapKeepsTail: past its cap, a job's stream keeps its last
// bytes and is marked truncated, in every way of getting it.
func TestJobOutputCapKeepsTail(t *testing.T) {
	const limit = 256 << 10
	_, c := testServerOpts(t, Options{Lab: true, OutputCap: limit})
	ctx := testCtx(t)
	const n = 100_000 // 589 KB
	want := testSeq(n)
	req := &pb.StartJobRequest{Argv: []string{"/bin/sh", "-c", fmt.Sprintf("seq 1 %d; echo small >&2", n)}}

	r, err := pb.RunJobWhole(ctx, c, req)
	require.NoError(t, err)
	assert.True(t, r.StdoutTruncated)
	assert.False(t, r.StderrTruncated)
	assert.Equal(t, int64(len(want)), r.StdoutSize)
	assert.Equal(t, limit, len(r.Stdout))
	assert.True(t, strings.HasSuffix(want, string(r.Stdout)), "the tail is kept")
	assert.True(t, strings.HasSuffix(string(r.Stdout), "\n99999\n100000\n"))
	assert.Equal(t, "small\n", string(r.Stderr))

	r, err = c.RunJob(ctx, req)
	require.NoError(t, err)
	assert.True(t, r.StdoutTruncated)
	assert.True(t, strings.HasSuffix(want, string(r.Stdout)))
	assert.Equal(t, limit, len(r.Stdout))
}

// TestJobOutputBudget: while the output kept of all jobs is past the
// agent's budget, a job that writes keeps only its last outputFloor bytes;
// the output of a job that ended earlier stays whole, and restoring its
// group gives its share back.
func TestJobOutputBudget(t *testing.T) {
	srv, c := testServerOpts(t, Options{Lab: true, OutputBudget: 4 << 20})
	ctx := testCtx(t)
	const n = 450_000 // 3.1 MB
	want := testSeq(n)
	req := &pb.StartJobRequest{Group: "g", Argv: []string{"seq", "1", strconv.Itoa(n)}}

	a, err := c.StartJob(ctx, req)
	require.NoError(t, err)
	ra, err := pb.WaitJobWhole(ctx, c, &pb.JobRef{Id: a.Id})
	require.NoError(t, err)
	require.False(t, ra.StdoutTruncated)
	assert.Equal(t, int64(len(want)), srv.budget.used.Load(), "the first job's output is kept, and counted")

	// The second keeps what is left of the budget.
	b, err := c.StartJob(ctx, req)
	require.NoError(t, err)
	rb, err := pb.WaitJobWhole(ctx, c, &pb.JobRef{Id: b.Id})
	require.NoError(t, err)
	assert.True(t, rb.StdoutTruncated, "past the budget")
	assert.Equal(t, 4<<20-len(want), len(rb.Stdout))
	assert.True(t, strings.HasSuffix(want, string(rb.Stdout)), "the tail is kept")
	// The third, with the budget spent, keeps its floor.
	rc, err := pb.RunJobWhole(ctx, c, req)
	require.NoError(t, err)
	assert.True(t, rc.StdoutTruncated, "past the budget")
	assert.Equal(t, outputFloor, len(rc.Stdout))
	assert.True(t, strings.HasSuffix(want, string(rc.Stdout)), "the tail is kept")

	ra, err = pb.WaitJobWhole(ctx, c, &pb.JobRef{Id: a.Id})
	require.NoError(t, err)
	assert.False(t, ra.StdoutTruncated, "an ended job's output is not taken")
	assert.True(t, string(ra.Stdout) == want)

	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Zero(t, srv.budget.used.Load(), "restoring the group gives its jobs' output back")
	rc, err = pb.RunJobWhole(ctx, c, req)
	require.NoError(t, err)
	assert.False(t, rc.StdoutTruncated, "the budget is free again")
	assert.True(t, string(rc.Stdout) == want)
}

// TestJobsWithoutGroupForgotten: jobs started without a group are
// forgotten once their result is collected, however it is; nothing of
// them stays in the agent (job table, journal, output budget).
func TestJobsWithoutGroupForgotten(t *testing.T) {
	srv, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	entries := func() int {
		srv.journal.mu.Lock()
		defer srv.journal.mu.Unlock()
		return len(srv.journal.entries)
	}
	before := entries()
	const rounds = 5
	for i := range rounds {
		for _, host := range []string{"", "h1"} {
			req := &pb.StartJobRequest{Host: host, Argv: []string{"/bin/sh", "-c", "echo job " + strconv.Itoa(i)}}
			for _, wait := range []func(*pb.JobRef) (*pb.JobResult, error){
				func(ref *pb.JobRef) (*pb.JobResult, error) { return c.WaitJob(ctx, ref) },
				func(ref *pb.JobRef) (*pb.JobResult, error) { return pb.WaitJobWhole(ctx, c, ref) },
			} {
				j, err := c.StartJob(ctx, req)
				require.NoError(t, err)
				r, err := wait(&pb.JobRef{Host: host, Id: j.Id})
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("job %d\n", i), string(r.Stdout))
			}
			_, err := c.RunJob(ctx, req)
			require.NoError(t, err)
			_, err = pb.RunJobWhole(ctx, c, req)
			require.NoError(t, err)
		}
	}
	for _, name := range []string{"", "h1"} {
		h, err := srv.host(name)
		require.NoError(t, err)
		h.mu.Lock()
		n := len(h.jobs)
		h.mu.Unlock()
		assert.Zero(t, n, "jobs left on host %q", name)
	}
	assert.Equal(t, before, entries(), "journal entries left by jobs without a group")
	assert.Zero(t, srv.budget.used.Load(), "output still counted")
}

// TestOutputTrim checks the record bookkeeping of one stream: what is
// kept is always the tail, in order, and the budget counts it.
func TestOutputTrim(t *testing.T) {
	b := &outputBudget{limit: 1 << 40}
	o := &output{limit: 10, budget: b}
	var all bytes.Buffer
	for i, p := range []string{"abc", "defgh", "ijklmnopq", "r", "stuvwxyz0123"} {
		o.write(pb.JobOutput_STDOUT, []byte(p))
		o.write(pb.JobOutput_STDERR, []byte(strconv.Itoa(i)))
		all.WriteString(p)
		got, cut := o.tail(pb.JobOutput_STDOUT, 100)
		want := all.String()[max(0, all.Len()-10):]
		assert.Equal(t, want, string(got), "after %q", p)
		assert.False(t, cut, "all that is kept fits")
		size, trunc := o.size(pb.JobOutput_STDOUT)
		assert.Equal(t, int64(all.Len()), size)
		assert.Equal(t, all.Len() > 10, trunc)
	}
	assert.Equal(t, int64(10+5), b.used.Load())
	chunks, _, _ := o.from(0)
	var out, errOut string
	var last uint64
	for _, c := range chunks {
		assert.Greater(t, c.seq, last, "in order")
		last = c.seq
		if c.stream == pb.JobOutput_STDOUT {
			out += string(c.data)
		} else {
			errOut += string(c.data)
		}
	}
	assert.Equal(t, all.String()[all.Len()-10:], out)
	assert.Equal(t, "01234", errOut)
	got, cut := o.tail(pb.JobOutput_STDOUT, 4)
	assert.Equal(t, "0123", string(got))
	assert.True(t, cut)
	o.release()
	o.release()
	assert.Zero(t, b.used.Load())
}
