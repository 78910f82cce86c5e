package recipes

import (
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestReboot reboots a host: its agent comes back, a device made before
// the reboot is gone, a sysctl changed before it has its old value, and
// jobs and traffic work afterwards. On the namespace lab it skips (its
// hosts are namespaces); it runs on the VM lab and on pool machines whose
// entry allows it (allow: [reboot]).
func TestReboot(t *testing.T) {
	lnsttest.Destructive(t, "reboot")
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	const key = "net.ipv4.ip_forward"
	old := h1.ReadSysctl(t, key)
	changed := "1"
	if old == "1" {
		changed = "0"
	}
	h1.Sysctl(t, key, changed)
	h1.Create(t, devices.Veth{Name: "rb0", PeerName: "rb1"})
	jobBefore := h1.Run(t, "cat /proc/sys/kernel/random/boot_id")
	before := strings.TrimSpace(jobBefore.Result().Stdout)

	h1.Reboot(t, lnsttest.RebootTimeout(5*time.Minute))

	require.True(t, h1.IsUp(), "the agent answers after Reboot")
	jobAfter := h1.Run(t, "cat /proc/sys/kernel/random/boot_id")
	after := strings.TrimSpace(jobAfter.Result().Stdout)
	require.NotEqual(t, before, after, "the boot id changes with a reboot")
	require.NotEqual(t, jobBefore.ID(), jobAfter.ID(), "job ids stay unique on the host across its reboot")
	require.Equal(t, old, h1.ReadSysctl(t, key), "%s after the reboot", key)
	h1.Run(t, "ip link show rb0", lnsttest.ExpectFail(), lnsttest.Desc("the veth made before the reboot is gone"))

	h1.Iface("eth0").AddIP(t, "198.18.1.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.1.2/24")
	res := modules.Ping{Dst: "198.18.1.2", Count: 3, Interval: 50 * time.Millisecond}.Run(t, h1)
	require.Zero(t, res.Lost, "ping from the rebooted host")
}
