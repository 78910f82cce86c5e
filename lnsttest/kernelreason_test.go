package lnsttest

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
)

// TestKernelReasonTc: classifiers and actions are looked up in the
// probe's tc map, and a qdisc's module name finds the qdisc.
func TestKernelReasonTc(t *testing.T) {
	p := &pb.ProbeReply{
		LinkKinds: map[string]bool{"veth": true},
		Qdiscs:    map[string]bool{"tbf": true, "netem": false},
		Tc:        map[string]bool{"cls_u32": true, "cls_flower": false, "act_mirred": true},
	}
	assert.Empty(t, kernelReason(p, "h1", "the local lab", "6.1", []string{"veth", "tbf", "sch_tbf", "cls_u32", "act_mirred"}))
	assert.Equal(t, `host "h1" needs kernel support for sch_netem, cls_flower, which the kernel of the local lab (6.1) lacks`,
		kernelReason(p, "h1", "the local lab", "6.1", []string{"sch_netem", "cls_u32", "cls_flower"}))
	assert.NoError(t, validate([]Requirement{HostReq("h1", Kernel("sch_netem", "act_gact", "cls_matchall", "clsact"))}))
	assert.ErrorContains(t, validate([]Requirement{HostReq("h1", Kernel("flower"))}), `Kernel("flower"): unknown kernel feature`)
}
