package lnsttest

import (
	"regexp"
	"testing"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
)

func TestIsErrorCounter(t *testing.T) {
	for name, want := range map[string]bool{
		"link/eth0/tx_dropped":          true,
		"link/eth0/rx_crc_errors":       true,
		"snmp/Ip/OutDiscards":           true,
		"snmp/Udp/RcvbufErrors":         true,
		"netstat/TcpExt/TCPTimeouts":    true,
		"netstat/TcpExt/PruneCalled":    true,
		"softnet/cpu1/time_squeeze":     true,
		"ethtool/eth0/rx_queue_0_drops": true,
		"link/eth0/tx_packets":          false,
		"snmp/Ip/OutRequests":           false,
		"snmp/Icmp/OutEchos":            false,
		"softnet/cpu0/processed":        false,
		"ethtool/eth0/peer_ifindex":     false,
		// The name is the last part: an interface called "err0" is not.
		"link/err0/rx_bytes": false,
	} {
		assert.Equal(t, want, isErrorCounter(name), name)
	}
}

func TestCounterSummary(t *testing.T) {
	assert.Empty(t, counterSummary(nil))
	assert.Empty(t, counterSummary([]results.SysinfoDelta{{Host: "h1", Deltas: map[string]int64{"link/eth0/tx_packets": 10}}}), "no error counter changed")
	got := counterSummary([]results.SysinfoDelta{
		{Host: "h1", Deltas: map[string]int64{"snmp/Ip/OutDiscards": 12, "link/eth0/tx_packets": 10, "link/eth0/tx_dropped": 3}},
		{Host: "h2", Deltas: map[string]int64{"softnet/cpu0/dropped": -1}},
	})
	assert.Equal(t, "  HOST  COUNTER               DELTA\n"+
		"  h1    link/eth0/tx_dropped  +3\n"+
		"  h1    snmp/Ip/OutDiscards   +12\n"+
		"  h2    softnet/cpu0/dropped  -1\n", got)
}

func TestKernelLogAllowedBy(t *testing.T) {
	allowMu.Lock()
	saved := allowedLogs
	allowedLogs = map[string][]*regexp.Regexp{
		"TestA":     {regexp.MustCompile(`at net/core/dev\.c`)},
		"TestB/sub": {regexp.MustCompile(`^BUG: KASAN`)},
	}
	allowMu.Unlock()
	t.Cleanup(func() { allowMu.Lock(); allowedLogs = saved; allowMu.Unlock() })
	warn := []string{"WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 f+0x0/0x1", "Modules linked in:"}
	assert.NotNil(t, kernelLogAllowed("TestA", warn))
	assert.NotNil(t, kernelLogAllowed("TestA/sub", warn), "a subtest of the allowing test")
	assert.Nil(t, kernelLogAllowed("TestAB", warn), "not a test of that name")
	assert.Nil(t, kernelLogAllowed("TestA", []string{"BUG: KASAN: use-after-free"}), "another splat")
	assert.NotNil(t, kernelLogAllowed("TestB", []string{"BUG: KASAN: use-after-free"}), "the test a subtest that allows it is part of")
}
