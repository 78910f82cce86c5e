package agent

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValuePathSysctl(t *testing.T) {
	ok := map[string]string{
		"net.ipv4.ip_forward":                 "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/ip_forward":                 "/proc/sys/net/ipv4/ip_forward",
		"kernel.hostname":                     "/proc/sys/kernel/hostname",
		"net.ipv6.conf.all.disable_ipv6":      "/proc/sys/net/ipv6/conf/all/disable_ipv6",
		"net/ipv4/conf/eth0.100/forwarding":   "/proc/sys/net/ipv4/conf/eth0.100/forwarding", // slashed keys keep their dots
		"net/ipv6/conf/br-lab.7/disable_ipv6": "/proc/sys/net/ipv6/conf/br-lab.7/disable_ipv6",
		"/net/ipv4/ip_forward":                "/proc/sys/net/ipv4/ip_forward",
	}
	for key, want := range ok {
		got, err := valuePath(kindSysctl, key)
		if assert.NoError(t, err, "key %q", key) {
			assert.Equal(t, want, got, "key %q", key)
		}
	}
	bad := []string{
		"",
		".",
		"/",
		"..",
		"net..ipv4",
		"net/../../etc/passwd",
		"../../etc/passwd",
		"net/ipv4/../../../etc/shadow",
		"net.ipv4.ip_forward\x00",
		"net/ipv4\x00/ip_forward",
	}
	for _, key := range bad {
		p, err := valuePath(kindSysctl, key)
		if assert.Error(t, err, "key %q gave %q", key, p) && key != "" {
			assert.Contains(t, err.Error(), testQuote(key), "the error names the key")
		}
	}
}

func TestValuePathSysfs(t *testing.T) {
	for _, path := range []string{"/sys/class/net/lo/mtu", "/sys/class/net/br0/bridge/stp_state", "/sys/kernel"} {
		got, err := valuePath(kindSysfs, path)
		if assert.NoError(t, err, "path %q", path) {
			assert.Equal(t, path, got)
		}
	}
	bad := []string{
		"",
		"/",
		"/sys",
		"/sys/",
		"/sys/../etc/passwd",
		"/sys/class/../../etc/passwd",
		"/sys/class//net",
		"/sys/class/./net",
		"/sys/class/net/lo/mtu/",
		"sys/class/net/lo/mtu",
		"class/net/lo/mtu",
		"../sys/class",
		"/sysfoo/x",
		"/proc/sys/net/ipv4/ip_forward",
		"/etc/passwd",
		"/sys/class/net/lo/mtu\x00",
	}
	for _, path := range bad {
		p, err := valuePath(kindSysfs, path)
		if assert.Error(t, err, "path %q gave %q", path, p) {
			assert.Contains(t, err.Error(), testQuote(path), "the error names the path")
		}
	}
}

func TestValuePathKind(t *testing.T) {
	for _, kind := range []string{"", "proc", "Sysctl", "sysfs "} {
		_, err := valuePath(kind, "/sys/class/net/lo/mtu")
		if assert.Error(t, err, "kind %q", kind) {
			assert.Contains(t, err.Error(), testQuote(kind))
		}
	}
}

// testQuote is s as the agent's messages quote inputs (%q).
func testQuote(s string) string { return fmt.Sprintf("%q", s) }

func TestCheckLinkName(t *testing.T) {
	for _, name := range []string{"eth0", "a", "br-lab.7", "veth_1@x", strings.Repeat("x", 15)} {
		assert.NoError(t, checkLinkName(name), "name %q", name)
	}
	bad := []string{
		strings.Repeat("x", 16),
		".",
		"..",
		"a/b",
		"a:b",
		"a b",
		"a\tb",
		"a\nb",
		"a\x00b",
		"/",
	}
	for _, name := range bad {
		err := checkLinkName(name)
		if assert.Error(t, err, "name %q", name) {
			assert.Contains(t, err.Error(), testQuote(name), "the error names the device")
		}
	}
	err := checkLinkName("")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "empty")
}

func TestParseCIDR(t *testing.T) {
	cases := []struct {
		in     string
		ip     string
		prefix int
	}{
		{"198.18.1.1/24", "198.18.1.1", 24},
		{"198.19.255.254/15", "198.19.255.254", 15},
		{"198.18.0.1/32", "198.18.0.1", 32},
		{"2001:db8::1/64", "2001:db8::1", 64},
		{"2001:db8:1::ff/128", "2001:db8:1::ff", 128},
	}
	for _, c := range cases {
		a, p, err := parseCIDR(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, netip.MustParsePrefix(c.in), p)
		assert.True(t, a.IP.Equal(net.ParseIP(c.ip)), "%s: host bits are kept, got %v", c.in, a.IP)
		ones, _ := a.Mask.Size()
		assert.Equal(t, c.prefix, ones, c.in)
	}
	for _, in := range []string{"", "198.18.1.1", "198.18.1.1/", "198.18.1.1/33", "198.18.1/24", "foo/24", "2001:db8::1/129", "2001:db8::1", "198.18.1.1/-1", " 198.18.1.1/24"} {
		_, _, err := parseCIDR(in)
		if assert.Error(t, err, "cidr %q", in) {
			assert.Contains(t, err.Error(), testQuote(in), "the error names the input")
		}
	}
}
