package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeviceSysctlKey(t *testing.T) {
	d := (&Host{name: "h1"}).device("enp1s0.10")
	for key, want := range map[string]string{
		"ipv6.accept_dad":          "net/ipv6/conf/enp1s0.10/accept_dad",
		"ipv4.rp_filter":           "net/ipv4/conf/enp1s0.10/rp_filter",
		"ipv4.neigh.gc_stale_time": "net/ipv4/neigh/enp1s0.10/gc_stale_time",
		"ipv6.neigh.retrans_time":  "net/ipv6/neigh/enp1s0.10/retrans_time",
	} {
		got, err := d.sysctlKey(key)
		require.NoError(t, err, key)
		assert.Equal(t, want, got, key)
	}
	for key, msg := range map[string]string{
		"accept_dad":          `device sysctl "accept_dad": want ipv4.<name> or ipv6.<name>`,
		"net.ipv6.accept_dad": `device sysctl "net.ipv6.accept_dad": want ipv4.<name>`,
		"ipv6.":               `device sysctl "ipv6.": "" is not the name`,
		"ipv6.conf.all.x":     `device sysctl "ipv6.conf.all.x": "conf.all.x" is not the name`,
		"ipv4.../x":           `"../x" is not the name`,
		"ipv4.neigh.":         `device sysctl "ipv4.neigh.": "" is not the name of one of a device's ipv4.neigh sysctls`,
	} {
		_, err := d.sysctlKey(key)
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), msg, key)
	}
	assert.Equal(t, "/sys/class/net/enp1s0.10/bonding/active_slave", d.SysfsPath("bonding/active_slave"))
}
