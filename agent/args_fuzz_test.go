package agent

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// FuzzValuePath checks that a sysctl key or sysfs path valuePath accepts
// maps to a clean path under /proc/sys/ or /sys/ with no ".." element: a
// value request cannot reach a file outside them.
func FuzzValuePath(f *testing.F) {
	for _, key := range []string{
		"net.ipv4.ip_forward", "net/ipv4/conf/eth0/rp_filter", "/sys/class/net/lo/mtu",
		"net.ipv4.conf.eth0/1.rp_filter", "../../etc/passwd", "/sys/../etc/shadow", "/sys/class//net",
		"net/../../../etc", ".", "..", "/", "a\x00b", "/sys/", "/sys", "net..ipv4", "./net",
	} {
		f.Add(key)
	}
	f.Fuzz(func(t *testing.T, key string) {
		for kind, root := range map[string]string{kindSysctl: "/proc/sys/", kindSysfs: "/sys/"} {
			p, err := valuePath(kind, key)
			if err != nil {
				continue
			}
			if p != filepath.Clean(p) {
				t.Fatalf("%s %q: path %q is not clean", kind, key, p)
			}
			if !strings.HasPrefix(p, root) || len(p) == len(root) {
				t.Fatalf("%s %q: path %q is not under %s", kind, key, p, root)
			}
			if rel, err := filepath.Rel(root, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("%s %q: path %q escapes %s (rel %q, %v)", kind, key, p, root, rel, err)
			}
			for _, e := range strings.Split(p, "/") {
				if e == ".." {
					t.Fatalf("%s %q: path %q has a .. element", kind, key, p)
				}
			}
			if strings.ContainsRune(p, 0) {
				t.Fatalf("%s %q: path %q has a NUL", kind, key, p)
			}
			if kind == kindSysfs && p != key {
				t.Fatalf("sysfs %q: path %q is not the key itself", key, p)
			}
		}
		if _, err := valuePath("proc", key); err == nil {
			t.Fatalf("kind proc %q accepted", key)
		}
	})
}

// fuzzKernelName is the kernel's dev_valid_name (net/core/dev.c): 1 to
// IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or byte for which the
// kernel's isspace holds (lib/ctype.c: ' ', \t, \n, \v, \f, \r and 0xa0).
// A NUL ends a C string, so a Go name with one is not the name it seems.
func fuzzKernelName(name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0:
			return false
		}
	}
	return true
}

// FuzzCheckLinkName checks that checkLinkName accepts exactly the names
// the kernel accepts: 1 to 15 bytes, no '/', ':', white space or NUL, not
// "." or "..".
func FuzzCheckLinkName(f *testing.F) {
	for _, name := range []string{
		"eth0", "veth-a", "br0.100", "123456789012345", "1234567890123456", "", ".", "..", "...",
		"a/b", "a:1", "a b", "a\tb", "a\rb", "a\vb", "a\fb", "a\xa0b", "a\x00", "ünïcödé", "eth0\n",
	} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := checkLinkName(name)
		if want := fuzzKernelName(name); want != (err == nil) {
			t.Fatalf("checkLinkName(%q) = %v; the kernel accepts it: %v", name, err, want)
		}
	})
}

// FuzzParseCIDR checks that an address parseCIDR accepts is the prefix
// netip parses, and that the netlink address it gives has the prefix's
// address and length in the address family netlink sends (an IP with a
// 4-byte form goes as AF_INET).
func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{
		"198.18.1.1/24", "2001:db8::1/64", "0.0.0.0/0", "::/0", "10.0.0.1/32", "fe80::1/128",
		"::ffff:1.2.3.4/120", "::1.2.3.4/96", "1.2.3.4/33", "1.2.3.4", "fe80::1%eth0/64", "01.2.3.4/8", " 1.2.3.4/8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, p, err := parseCIDR(s)
		if err != nil {
			if a != nil {
				t.Fatalf("parseCIDR(%q): error %v with an address %v", s, err, a)
			}
			return
		}
		want, perr := netip.ParsePrefix(s)
		if perr != nil || want != p {
			t.Fatalf("parseCIDR(%q) = %v; netip gives %v, %v", s, p, want, perr)
		}
		ones, bits := a.Mask.Size()
		if ones != p.Bits() || bits != p.Addr().BitLen() {
			t.Fatalf("parseCIDR(%q): mask /%d of %d bits, want /%d of %d", s, ones, bits, p.Bits(), p.Addr().BitLen())
		}
		if got, ok := netip.AddrFromSlice(a.IP); !ok || got.Unmap() != p.Addr().Unmap() {
			t.Fatalf("parseCIDR(%q): address %v, want %v", s, a.IP, p.Addr())
		}
		if v4 := a.IP.To4() != nil; v4 != (bits == 32) {
			t.Fatalf("parseCIDR(%q): netlink sends %v as IPv4 %v but its mask has %d bits", s, a.IP, v4, bits)
		}
	})
}

// FuzzRouteArgs checks the routes netlinkRoute accepts: a destination
// that is "default" or a prefix without host bits, a gateway or device, a
// family that is the one asked for (if any) and the one of every address,
// each address in that family's form, no negative table or metric. Devices
// are looked up on the agent's own host, read only.
func FuzzRouteArgs(f *testing.F) {
	for _, r := range []route{
		{Dst: "198.18.20.0/24", Via: "198.18.1.1"},
		{Dst: "2001:db8:2::/64", Via: "2001:db8::1", Table: 100, Metric: 5},
		{Dst: "default", Via: "fe80::1", Family: 6},
		{Dst: "default", Dev: "lo"},
		{Dst: "198.18.20.1/24", Via: "198.18.1.1"},
		{Dst: "198.18.20.0/24", Via: "2001:db8::1"},
		{Dst: "::ffff:198.18.20.0/120", Dev: "lo"},
		{Dst: "2001:db8::/64", Via: "2001:db8::1", Family: 4},
		{Dst: "default", Via: "::ffff:1.2.3.4"},
		{Dst: "10.0.0.0/8", Dev: "lo", Table: -1},
		{Dst: "default"},
		{Dst: "default", Via: "fe80::1%lo"},
	} {
		f.Add(r.Dst, r.Via, r.Dev, int32(r.Table), int32(r.Metric), int32(r.Family))
	}
	h, err := newRootHost()
	if err != nil {
		f.Skipf("open netlink: %v", err)
	}
	f.Cleanup(h.close)
	f.Fuzz(func(t *testing.T, dst, via, dev string, table, metric, family int32) {
		r := route{Dst: dst, Via: via, Dev: dev, Table: int(table), Metric: int(metric), Family: int(family)}
		_ = r.String()
		nr, err := h.netlinkRoute(r)
		if err != nil {
			var ae argError
			if !errors.As(err, &ae) && dev == "" {
				t.Fatalf("route %s: error %v is not an argument error", r, err)
			}
			return
		}
		fuzzCheckRoute(t, r, nr)
	})
}

func fuzzCheckRoute(t *testing.T, r route, nr *netlink.Route) {
	t.Helper()
	if r.Via == "" && r.Dev == "" {
		t.Fatalf("route %s: accepted with no gateway or device", r)
	}
	if nr.Table < 0 || nr.Priority < 0 || nr.Table != r.Table || nr.Priority != r.Metric {
		t.Fatalf("route %s: table %d metric %d", r, nr.Table, nr.Priority)
	}
	if nr.Family != netlink.FAMILY_V4 && nr.Family != netlink.FAMILY_V6 {
		t.Fatalf("route %s: family %d", r, nr.Family)
	}
	if want := map[int]int{4: netlink.FAMILY_V4, 6: netlink.FAMILY_V6}[r.Family]; r.Family != 0 && nr.Family != want {
		t.Fatalf("route %s: family %d asked, route has family %d", r, r.Family, nr.Family)
	}
	// netlink sends an IP with a 4-byte form as IPv4.
	v4 := nr.Family == netlink.FAMILY_V4
	// "default" is no destination, or the zero-length prefix when there
	// is no gateway either; anything else is a destination.
	if r.Dst == "default" && nr.Dst != nil && (nr.Gw != nil || !net.IP(nr.Dst.Mask).IsUnspecified()) ||
		r.Dst != "default" && nr.Dst == nil {
		t.Fatalf("route %s: destination %v", r, nr.Dst)
	}
	if nr.Dst != nil {
		ones, bits := nr.Dst.Mask.Size()
		if (nr.Dst.IP.To4() != nil) != v4 || (bits == 32) != v4 || bits == 0 {
			t.Fatalf("route %s: destination %v (/%d of %d bits) in family %d", r, nr.Dst, ones, bits, nr.Family)
		}
		if !nr.Dst.IP.Equal(nr.Dst.IP.Mask(nr.Dst.Mask)) {
			t.Fatalf("route %s: destination %v has host bits", r, nr.Dst)
		}
	}
	if (r.Via == "") != (nr.Gw == nil) {
		t.Fatalf("route %s: gateway %v", r, nr.Gw)
	}
	if nr.Gw != nil && (nr.Gw.To4() != nil) != v4 {
		t.Fatalf("route %s: gateway %v in family %d", r, nr.Gw, nr.Family)
	}
	if nr.Gw != nil && len(nr.Gw) != net.IPv4len && len(nr.Gw) != net.IPv6len {
		t.Fatalf("route %s: gateway of %d bytes", r, len(nr.Gw))
	}
	if (r.Dev == "") != (nr.LinkIndex == 0) {
		t.Fatalf("route %s: link index %d", r, nr.LinkIndex)
	}
}
