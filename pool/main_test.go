package pool

import (
	"os"
	"testing"

	"github.com/lnst-go/lnst/agent"
)

// TestMain lets the lab re-execute this test binary as its agent.
func TestMain(m *testing.M) {
	if agent.IsLabAgent() {
		os.Exit(agent.ServeLab())
	}
	if agent.IsVMAgent() {
		os.Exit(agent.ServeVM())
	}
	os.Exit(m.Run())
}
