package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeAgent is an agent whose Probe answers kinds, or fails with err.
type probeAgent struct {
	pb.AgentClient
	kinds map[string]bool
	err   error
}

func (a probeAgent) Probe(context.Context, *pb.ProbeRequest, ...grpc.CallOption) (*pb.ProbeReply, error) {
	if a.err != nil {
		return nil, a.err
	}
	return &pb.ProbeReply{LinkKinds: a.kinds}, nil
}

// SysinfoSnapshot answers as an agent from before the kernel log watch:
// newMatch goes on to watch the hosts it matched.
func (a probeAgent) SysinfoSnapshot(context.Context, *pb.SysinfoRequest, ...grpc.CallOption) (*pb.SysinfoReply, error) {
	return nil, status.Error(codes.Unimplemented, "unknown method SysinfoSnapshot")
}

// endTB is a testing.TB whose Fatalf and Skipf record how the test ended
// and end the goroutine, as testing.T's do.
type endTB struct {
	testing.TB
	ended, msg string
}

func (e *endTB) Helper() {}

func (e *endTB) Fatalf(format string, args ...any) { e.end("fail", format, args...) }

func (e *endTB) Skipf(format string, args ...any) { e.end("skip", format, args...) }

func (e *endTB) end(how, format string, args ...any) {
	e.ended, e.msg = how, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// newMatchOf runs newMatch for one host h1 on pool host m1 that needs
// vlan, with agent a, and says how the test ended.
func newMatchOf(t *testing.T, a pb.AgentClient) *endTB {
	et := &endTB{TB: t}
	st := &testState{t: et, clients: map[pb.AgentClient]bool{}}
	onTest(func() {
		st.newMatch(et, []matchHost{{h: &Host{client: a, name: "h1"}, where: "m1", kernel: "6.1.0", need: []string{"vlan"}}})
		et.ended = "match"
	})
	return et
}

// TestNewMatchProbeFails: an agent that cannot tell what its kernel has
// fails the recipe, naming the host and the error, even without
// -lnst.strict: a broken agent must not pass as a skip.
func TestNewMatchProbeFails(t *testing.T) {
	saved := cfg
	defer func() { cfg = saved }()
	cfg = config{logLevel: "off"}
	et := newMatchOf(t, &probeAgent{err: errors.New("rpc error: the agent broke")})
	assert.Equal(t, "fail", et.ended, et.msg)
	assert.Contains(t, et.msg, `host "h1" (m1)`)
	assert.Contains(t, et.msg, "the agent broke")
}

// TestNewMatchKernelLacks: a kernel that lacks a needed feature skips the
// recipe, or fails it under -lnst.strict, naming what is missing.
func TestNewMatchKernelLacks(t *testing.T) {
	saved := cfg
	defer func() { cfg = saved }()
	cfg = config{logLevel: "off"}
	et := newMatchOf(t, &probeAgent{kinds: map[string]bool{"bond": true}})
	assert.Equal(t, "skip", et.ended)
	assert.Equal(t, `lnsttest.Require: requirements cannot be met: host "h1" needs kernel support for vlan, which the kernel of m1 (6.1.0) lacks`, et.msg)
	cfg.strict = true
	et = newMatchOf(t, &probeAgent{kinds: map[string]bool{"bond": true}})
	assert.Equal(t, "fail", et.ended)
	assert.Contains(t, et.msg, "(-lnst.strict): host \"h1\" needs kernel support for vlan")
	et = newMatchOf(t, &probeAgent{kinds: map[string]bool{"vlan": true}})
	assert.Equal(t, "match", et.ended, et.msg)
}
