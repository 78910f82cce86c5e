package agent

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// testRules lists the host's IPv4 and IPv6 rules as ip shows them.
func testRules(t *testing.T, h *host) string {
	t.Helper()
	var out []byte
	require.NoError(t, h.do(func() error {
		var err error
		out, err = exec.Command("sh", "-c", "ip rule show; ip -6 rule show").Output()
		return err
	}))
	return string(out)
}

func testIP(t *testing.T, h *host, args ...string) {
	t.Helper()
	require.NoError(t, h.do(func() error { return exec.Command("ip", args...).Run() }))
}

// TestL3mdevRules adds and removes the l3mdev rules a VRF needs the way the
// kernel's first VRF adds them, without a VRF (the kernel here may lack
// the vrf kind; the rules are core routing).
func TestL3mdevRules(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("requires root: makes a network namespace")
	}
	h, err := newNamespaceHost("l3mdev", false)
	require.NoError(t, err)
	t.Cleanup(h.close)
	before := testRules(t, h)
	require.NotContains(t, before, "l3mdev")
	missing, err := h.l3mdevMissing()
	require.NoError(t, err)
	assert.Subset(t, missing, []int{unix.AF_INET, unix.AF_INET6})

	require.NoError(t, h.ensureL3mdev())
	rules := testRules(t, h)
	assert.Contains(t, rules, "1000:\tfrom all lookup [l3mdev-table]\n32766:", "where the kernel puts it")
	for _, f := range []int{unix.AF_INET, unix.AF_INET6} {
		ok, err := h.hasL3mdevRule(f)
		require.NoError(t, err)
		assert.True(t, ok, "family %d has its l3mdev rule", f)
	}
	require.NoError(t, h.ensureL3mdev(), "a second time adds nothing and fails not")
	assert.Equal(t, rules, testRules(t, h))

	require.NoError(t, h.dropL3mdev(missing))
	assert.Equal(t, before, testRules(t, h))

	// A rule made by ip (another protocol) is the l3mdev rule too; only
	// the families named go.
	testIP(t, h, "-6", "rule", "add", "l3mdev", "pref", "1000")
	testIP(t, h, "rule", "add", "l3mdev", "pref", "1000")
	missing, err = h.l3mdevMissing()
	require.NoError(t, err)
	assert.NotContains(t, missing, unix.AF_INET)
	assert.NotContains(t, missing, unix.AF_INET6)
	require.NoError(t, h.dropL3mdev([]int{unix.AF_INET6}))
	assert.Contains(t, testRules(t, h), "1000:\tfrom all lookup [l3mdev-table]")
	require.NoError(t, h.dropL3mdev([]int{unix.AF_INET}))
	assert.Equal(t, before, testRules(t, h))
}

func TestIsL3mdevRule(t *testing.T) {
	var m []byte
	for _, d := range l3mdevRuleMsg(unix.AF_INET6) {
		m = append(m, d.Serialize()...)
	}
	assert.True(t, isL3mdevRule(m))
	assert.Equal(t, byte(unix.AF_INET6), m[0], "family")
	assert.Equal(t, byte(1), m[7], "action FR_ACT_TO_TBL")
	assert.False(t, isL3mdevRule(m[:unix.SizeofRtMsg]), "no attributes")
	assert.False(t, isL3mdevRule(m[:4]), "short")
}
