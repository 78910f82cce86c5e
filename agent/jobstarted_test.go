package agent

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestRunJobStreamTellsTheJobFirst: RunJobStream's first message names
// the job (id, start) while it runs, so that the controller can kill it
// or read its output by that id before it ends; the whole output and the
// result still come as before, with the same id.
func TestRunJobStreamTellsTheJobFirst(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	req := &pb.StartJobRequest{Argv: []string{"/bin/sh", "-c", "echo out; exec sleep 600"}}
	started := make(chan *pb.JobStarted, 1)
	type reply struct {
		r   *pb.JobResult
		err error
	}
	done := make(chan reply, 1)
	go func() {
		r, err := pb.RunJobWholeStarted(ctx, c, req, func(s *pb.JobStarted) { started <- s })
		done <- reply{r, err}
	}()
	var s *pb.JobStarted
	select {
	case s = <-started:
	case r := <-done:
		t.Fatalf("the job ended before it was told started: %v %v", r.r, r.err)
	}
	require.NotZero(t, s.Id)
	require.NotNil(t, s.Start)
	// The id names the running job: its output so far is read by that
	// id, and killing it by that id ends the call.
	out, err := c.StreamJob(ctx, &pb.JobRef{Id: s.Id})
	require.NoError(t, err, "stream job %d, told at its start", s.Id)
	o, err := out.Recv()
	require.NoError(t, err, "output of job %d", s.Id)
	assert.Equal(t, "out\n", string(o.Data))
	_, err = c.KillJob(ctx, &pb.KillJobRequest{Id: s.Id, Signal: 9})
	require.NoError(t, err, "kill job %d, told at its start", s.Id)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, s.Id, r.r.Id)
	assert.True(t, s.Start.AsTime().Equal(r.r.Start.AsTime()), "start %v, result's %v", s.Start.AsTime(), r.r.Start.AsTime())
	assert.Equal(t, int32(9), r.r.Signal)
	assert.Equal(t, "out\n", string(r.r.Stdout), "the start message adds no output")
}

// TestRunJobStreamStartOldClient: to a client that does not know
// JobEvent.started (field 30), RunJobStream's first message is an empty
// output chunk; a job that could not start has no start message.
func TestRunJobStreamStartOldClient(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	st, err := c.RunJobStream(ctx, &pb.StartJobRequest{Argv: []string{"echo", "hi"}})
	require.NoError(t, err)
	first, err := st.Recv()
	require.NoError(t, err)
	require.NotNil(t, first.Started, "the first message tells the job's start")
	raw, err := proto.Marshal(first)
	require.NoError(t, err)
	// What a client without field 30 reads: the message without it.
	var old []byte
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		require.GreaterOrEqual(t, n, 0)
		m := protowire.ConsumeFieldValue(num, typ, raw[n:])
		require.GreaterOrEqual(t, m, 0)
		if num != 30 {
			old = append(old, raw[:n+m]...)
		}
		raw = raw[n+m:]
	}
	var ev pb.JobEvent
	require.NoError(t, proto.Unmarshal(old, &ev))
	o, ok := ev.Event.(*pb.JobEvent_Output)
	require.True(t, ok, "an old client reads an output chunk, not %T", ev.Event)
	assert.Equal(t, pb.JobOutput_STDOUT, o.Output.Stream)
	assert.Empty(t, o.Output.Data)
	r, err := pb.CollectJob(st)
	require.NoError(t, err)
	assert.Equal(t, "hi\n", string(r.Stdout))
	assert.Equal(t, first.Started.Id, r.Id)

	st, err = c.RunJobStream(ctx, &pb.StartJobRequest{Argv: []string{"/nonexistent/lnst-no-such-command"}})
	require.NoError(t, err)
	for {
		ev, err := st.Recv()
		require.NoError(t, err)
		assert.Nil(t, ev.Started, "a job that could not start is not told started")
		if res, ok := ev.Event.(*pb.JobEvent_Result); ok {
			assert.Equal(t, int32(127), res.Result.ExitCode)
			break
		}
	}
}
