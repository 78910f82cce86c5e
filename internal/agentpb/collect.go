package agentpb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RunJobWhole runs a job as RunJob does, but gets all the output the agent
// kept of it through RunJobStream, whatever its size. An agent without
// RunJobStream is asked with RunJob (its output is then limited as
// RunJob's).
func RunJobWhole(ctx context.Context, c AgentClient, req *StartJobRequest) (*JobResult, error) {
	return RunJobWholeStarted(ctx, c, req, nil)
}

// RunJobWholeStarted is RunJobWhole that calls started, unless nil, with
// the job's id and start as soon as the agent tells them: when the job
// has started, before its end. An agent that does not tell them (one
// older than JobEvent.started, or without RunJobStream) never calls it;
// neither does a job that could not start.
func RunJobWholeStarted(ctx context.Context, c AgentClient, req *StartJobRequest, started func(*JobStarted)) (*JobResult, error) {
	return whole(func() (grpc.ServerStreamingClient[JobEvent], error) { return c.RunJobStream(ctx, req) },
		func() (*JobResult, error) { return c.RunJob(ctx, req) }, started)
}

// WaitJobWhole waits for a job as WaitJob does, but gets all the output
// the agent kept of it through WaitJobStream. An agent without
// WaitJobStream is asked with WaitJob.
func WaitJobWhole(ctx context.Context, c AgentClient, ref *JobRef) (*JobResult, error) {
	return whole(func() (grpc.ServerStreamingClient[JobEvent], error) { return c.WaitJobStream(ctx, ref) },
		func() (*JobResult, error) { return c.WaitJob(ctx, ref) }, nil)
}

// whole collects the job result of the streaming call stream, or asks
// unary when the agent does not have the streaming call; started is
// collectJob's.
func whole(stream func() (grpc.ServerStreamingClient[JobEvent], error), unary func() (*JobResult, error), started func(*JobStarted)) (*JobResult, error) {
	st, err := stream()
	if err == nil {
		var r *JobResult
		r, err = collectJob(st, started)
		if status.Code(err) != codes.Unimplemented {
			return r, err
		}
	}
	if status.Code(err) != codes.Unimplemented {
		return nil, err
	}
	return unary()
}

// MaxCollect is the most CollectJob takes of one stream of a job: more
// than any agent keeps (its output cap), so that an agent that sends more
// cannot fill the controller's memory.
const MaxCollect = 1 << 30

// CollectJob receives a WaitJobStream or RunJobStream reply: the job's
// output chunks and its result, with the output put in the result's
// Stdout and Stderr.
func CollectJob(stream grpc.ServerStreamingClient[JobEvent]) (*JobResult, error) {
	return collectJob(stream, nil)
}

// collectJob is CollectJob that calls started, unless nil, with the
// job's start when a message tells it (JobEvent.started: RunJobStream's
// first).
func collectJob(stream grpc.ServerStreamingClient[JobEvent], started func(*JobStarted)) (*JobResult, error) {
	var out [2]bytes.Buffer
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the job's stream ended before its result")
		}
		if err != nil {
			return nil, err
		}
		if ev.Started != nil && started != nil {
			started(ev.Started)
		}
		switch e := ev.Event.(type) {
		case *JobEvent_Output:
			s := e.Output.Stream
			if s != JobOutput_STDOUT && s != JobOutput_STDERR {
				return nil, fmt.Errorf("job output of unknown stream %d", s)
			}
			if out[s].Len()+len(e.Output.Data) > MaxCollect {
				return nil, fmt.Errorf("the agent sent more than %d bytes of the job's %v", MaxCollect, s)
			}
			out[s].Write(e.Output.Data)
		case *JobEvent_Result:
			r := e.Result
			if r == nil {
				return nil, errors.New("the job's result is empty")
			}
			r.Stdout, r.Stderr = out[0].Bytes(), out[1].Bytes()
			return r, nil
		default:
			return nil, fmt.Errorf("unknown job event %T", ev.Event)
		}
	}
}
