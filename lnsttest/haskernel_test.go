package lnsttest

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHasKernel asks a lab host's kernel what it has: the link kinds
// every lab needs, sctp as this machine's kernel has it (the probe's
// socket loads the module where there is one), a name nothing reports
// fails the recipe naming it, and all of several must be there.
func TestHasKernel(t *testing.T) {
	if os.Geteuid() != 0 && cfg.lab != "rootless" {
		t.Skip("the local lab requires root (or -lnst.lab=rootless)")
	}
	h := Require(t, HostReq("h1")).Host("h1")
	assert.True(t, h.HasKernel(t, "veth", "bridge"))
	sctp := h.HasKernel(t, "sctp")
	_, err := os.Stat("/proc/sys/net/sctp")
	assert.Equal(t, err == nil, sctp, "HasKernel(sctp) against /proc/sys/net/sctp (%v)", err)
	assert.Equal(t, sctp, h.HasKernel(t, "veth", "sctp"), "veth and sctp")

	ft := &fatalTB{TB: t}
	onTest(func() { h.HasKernel(ft, "veth", "nosuch") })
	assert.Contains(t, ft.msg, `h1.HasKernel("nosuch"): unknown kernel feature (known: `)
}
