package lnsttest

import (
	"fmt"
	"strings"
	"testing"
)

// sysctlKey is the key under /proc/sys of the device's own sysctl key:
// "ipv6.accept_dad" is net/ipv6/conf/<device>/accept_dad, and
// "ipv4.neigh.gc_stale_time" net/ipv4/neigh/<device>/gc_stale_time. The
// key is a path ("/" separated), so that a device name with a dot in it
// ("eth0.10") stays one component.
func (d *Device) sysctlKey(key string) (string, error) {
	family, attr, _ := strings.Cut(key, ".")
	if family != "ipv4" && family != "ipv6" {
		return "", fmt.Errorf("device sysctl %q: want ipv4.<name> or ipv6.<name> (net.ipv6.conf.%s.<name>), or ipv4.neigh.<name> or ipv6.neigh.<name>", key, d.name)
	}
	dir := "conf"
	if rest, ok := strings.CutPrefix(attr, "neigh."); ok {
		dir, attr = "neigh", rest
	}
	if attr == "" || strings.ContainsAny(attr, "./") {
		return "", fmt.Errorf("device sysctl %q: %q is not the name of one of a device's %s.%s sysctls", key, attr, family, dir)
	}
	return "net/" + family + "/" + dir + "/" + d.name + "/" + attr, nil
}

// Sysctl sets one of the device's own sysctls, named without the device:
// "ipv4.<name>" or "ipv6.<name>" for net.ipv4.conf.<device>.<name> or
// net.ipv6.conf.<device>.<name> ("ipv6.accept_dad", "ipv4.rp_filter"), and
// "ipv4.neigh.<name>" or "ipv6.neigh.<name>" for net.ipvN.neigh.<device>.
// <name>. The old value is restored when the test ends, as Host.Sysctl's.
// A recipe uses it rather than building the key from a name, which would
// be the required name ("eth0") and not the device's on a pool machine.
func (d *Device) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	k, err := d.sysctlKey(key)
	if err != nil {
		t.Fatalf("%s: %v", d.host.name, err)
	}
	d.host.writeValue(t, "sysctl", k, value)
}

// ReadSysctl reads one of the device's own sysctls, named as for Sysctl.
func (d *Device) ReadSysctl(t testing.TB, key string) string {
	t.Helper()
	k, err := d.sysctlKey(key)
	if err != nil {
		t.Fatalf("%s: %v", d.host.name, err)
	}
	return d.host.readValue(t, "sysctl", k)
}

// SysfsPath is the path of the device's sysfs attribute attr, relative to
// its directory ("mtu", "bonding/active_slave"): /sys/class/net/<device>/
// <attr>. The path is not cleaned: one that leaves the directory ("..")
// is refused by WriteSysfs and ReadSysfs.
func (d *Device) SysfsPath(attr string) string {
	return "/sys/class/net/" + d.name + "/" + attr
}

// WriteSysfs writes the device's sysfs attribute attr (as for SysfsPath)
// and restores its old value when the test ends, as Host.WriteSysfs.
func (d *Device) WriteSysfs(t testing.TB, attr, value string) {
	t.Helper()
	d.host.writeValue(t, "sysfs", d.SysfsPath(attr), value)
}

// ReadSysfs reads the device's sysfs attribute attr (as for SysfsPath).
func (d *Device) ReadSysfs(t testing.TB, attr string) string {
	t.Helper()
	return d.host.readValue(t, "sysfs", d.SysfsPath(attr))
}
