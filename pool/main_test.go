package pool

import (
	"os"
	"testing"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/internal/sockprobe"
)

// TestMain lets the lab re-execute this test binary as its agent, and
// tests re-execute it as a probe (sockprobe) or as a rootless lab's
// controller (rootlessControllerEnv).
func TestMain(m *testing.M) {
	if agent.IsLabAgent() {
		os.Exit(agent.ServeLab())
	}
	if agent.IsVMAgent() {
		os.Exit(agent.ServeVM())
	}
	sockprobe.Main()
	if os.Getenv(rootlessControllerEnv) != "" {
		os.Exit(rootlessController())
	}
	os.Exit(m.Run())
}
