package lnsttest

import (
	"slices"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// HasKernel reports whether the host's kernel has every one of features,
// named as Kernel names them ("sctp", "macsec", "sch_netem"). It is for a
// recipe that does more where the kernel offers more (the ENRT recipes
// add SCTP streams where both hosts have sctp) rather than requiring it:
// a recipe that cannot run without a feature asks for it with Kernel, so
// that the lab or pool finds a host that has it. The host's agent probes
// its kernel (the local lab's namespace hosts share one probe of this
// machine's kernel); an unknown name or a failed probe fails t.
func (h *Host) HasKernel(t testing.TB, features ...string) bool {
	t.Helper()
	if h.outer != nil {
		return h.outer.HasKernel(t, features...)
	}
	known := agent.KernelFeatures()
	for _, f := range features {
		if !slices.Contains(known, kernelFeature(f)) {
			t.Fatalf("lnsttest: %s.HasKernel(%q): unknown kernel feature (known: %s)", h.name, f, strings.Join(known, ", "))
		}
	}
	var p *pb.ProbeReply
	var err error
	if h.vm == nil && h.s.pool == nil && h.s.lab != nil {
		p, err = h.s.probe()
	} else {
		p, err = h.client.Probe(rpcCtx(t), &pb.ProbeRequest{})
	}
	if err != nil {
		t.Fatalf("lnsttest: %s.HasKernel(%s): probe its kernel: %v", h.name, strings.Join(features, ", "), err)
	}
	return kernelReason(p, h.name, "", "", features) == ""
}
