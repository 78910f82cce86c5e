package lnsttest_test

import (
	"fmt"
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNicVethE2E sets a lab veth's channels and its rx queue 0's RPS
// CPUs in a subtest and finds both set back after it; pause frames and
// RSS are reported as not supported (ErrNotSupported), and a veth has no
// interrupts.
func TestNicVethE2E(t *testing.T) {
	m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
	h1 := m.Host("h1")
	eth0 := h1.Iface("eth0")
	before, max, ok := eth0.Channels(t)
	require.True(t, ok, "a veth has channels")
	rps := eth0.QueueCPUs(t, "queues/rx-0/rps_cpus")
	t.Run("set", func(t *testing.T) {
		if max["rx"] >= 2 {
			eth0.SetChannels(t, map[string]uint32{"rx": 2, "tx": 2})
			got, _, _ := eth0.Channels(t)
			assert.Equal(t, map[string]uint32{"rx": 2, "tx": 2}, got)
		}
		eth0.SetRPS(t, 0, 0)
		assert.Equal(t, []int{0}, eth0.QueueCPUs(t, "queues/rx-0/rps_cpus"))
	})
	got, _, _ := eth0.Channels(t)
	assert.Equal(t, before, got, "channels set back")
	assert.Equal(t, rps, eth0.QueueCPUs(t, "queues/rx-0/rps_cpus"), "RPS set back")

	err := eth0.TrySetPause(t, map[string]uint32{"rx": 1})
	assert.ErrorIs(t, err, lnsttest.ErrNotSupported)
	var ns *lnsttest.NotSupportedError
	if assert.ErrorAs(t, err, &ns) {
		assert.Equal(t, "pause settings", ns.What)
		assert.Equal(t, eth0.Name(), ns.Device)
	}
	_, ok = eth0.RSS(t)
	assert.False(t, ok, "a veth has no RSS")
	assert.ErrorIs(t, eth0.TrySetRSS(t, lnsttest.RSSChange{Equal: 1}), lnsttest.ErrNotSupported)
	irqs, online := eth0.IRQs(t)
	assert.Empty(t, irqs, "a veth has no interrupts")
	assert.NotEmpty(t, online)
}

// TestCPUKnobsE2E disables the host's deeper cpuidle states in a subtest
// (this machine's: lab hosts share its CPUs) and finds them enabled again
// after it.
func TestCPUKnobsE2E(t *testing.T) {
	h1 := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	state := "/sys/devices/system/cpu/cpu0/cpuidle/state1/disable"
	var before string
	t.Run("disable", func(t *testing.T) {
		before = h1.ReadSysfs(t, state)
		n := h1.DisableIdleStates(t)
		assert.Positive(t, n)
		assert.Equal(t, "1", h1.ReadSysfs(t, state))
	})
	if before == "" {
		return // the subtest skipped: no cpuidle states here
	}
	assert.Equal(t, before, h1.ReadSysfs(t, state), fmt.Sprintf("%s set back", state))
}
