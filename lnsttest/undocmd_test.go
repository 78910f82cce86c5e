package lnsttest

import (
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestUndoOptionRequest: Undo asks the agent to journal its command, run
// under /bin/sh -c as Run runs its own, in the job's host and group.
func TestUndoOptionRequest(t *testing.T) {
	var o runOpts
	for _, opt := range []RunOpt{Timeout(time.Second), Undo("ovs-vsctl del-br br9"), Desc("add br9")} {
		opt(&o)
	}
	got := o.request("h1/ns", "s/TestX#1", []string{"/bin/sh", "-c", "ovs-vsctl add-br br9"})
	want := &pb.StartJobRequest{Host: "h1/ns", Group: "s/TestX#1", Argv: []string{"/bin/sh", "-c", "ovs-vsctl add-br br9"},
		Timeout: durationpb.New(time.Second), Desc: "add br9", UndoArgv: []string{"/bin/sh", "-c", "ovs-vsctl del-br br9"}}
	assert.True(t, proto.Equal(want, got), "got %v", got)

	var none runOpts
	assert.Empty(t, none.request("h1", "g", []string{"true"}).UndoArgv, "no Undo, no undo command")
}

// TestUndoArgvRequest: UndoArgv journals its argv as it is, with no
// shell; the last of Undo and UndoArgv given counts.
func TestUndoArgvRequest(t *testing.T) {
	var o runOpts
	for _, opt := range []RunOpt{Undo("echo shell"), UndoArgv("ovs-vsctl", "--if-exists", "del-port", "br0", "a b;$(x)")} {
		opt(&o)
	}
	got := o.request("h1", "g", []string{"true"})
	assert.Equal(t, []string{"ovs-vsctl", "--if-exists", "del-port", "br0", "a b;$(x)"}, got.UndoArgv)
	UndoArgv("x")(&o)
	Undo("echo again")(&o)
	assert.Equal(t, []string{"/bin/sh", "-c", "echo again"}, o.request("h1", "g", []string{"true"}).UndoArgv)
}
