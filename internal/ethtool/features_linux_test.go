package ethtool

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestCommandsMatchUnix(t *testing.T) {
	require.Equal(t, unix.ETHTOOL_GSTRINGS, cmdGStrings)
	require.Equal(t, unix.ETHTOOL_GSSET_INFO, cmdGSSetInfo)
	require.Equal(t, unix.ETHTOOL_GFEATURES, cmdGFeatures)
	require.Equal(t, unix.ETHTOOL_SFEATURES, cmdSFeatures)
	require.Equal(t, unix.ETHTOOL_F_UNSUPPORTED, flagUnsupported)
	require.Equal(t, unix.ETHTOOL_F_WISH, flagWish)
}

// vethLab is a throwaway network namespace holding the veth pair
// veth0/veth1, with an AF_INET socket in it for the ethtool ioctls.
type vethLab struct {
	ns netns.NsHandle
	fd int
}

// newVethLab makes a vethLab and registers its release with t.Cleanup;
// closing the last reference to the namespace removes the veth pair.
func newVethLab(t *testing.T) *vethLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ns, fd := inNewNetns(t)
	t.Cleanup(func() { ns.Close() })
	t.Cleanup(func() { unix.Close(fd) })

	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err, "netlink handle in test namespace")
	t.Cleanup(h.Close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
	require.NoError(t, h.LinkAdd(veth), "create veth0/veth1 in test namespace")
	t.Cleanup(func() { _ = h.LinkDel(veth) })
	return &vethLab{ns: ns, fd: fd}
}

// inNewNetns creates a network namespace and an AF_INET/SOCK_DGRAM socket
// in it, and returns the calling goroutine's thread to the original
// namespace. It is the only place the tests switch a thread's namespace.
func inNewNetns(t *testing.T) (netns.NsHandle, int) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current network namespace: %v", err)
	}
	defer orig.Close()

	ns, nsErr := netns.New()
	fd, sockErr := -1, error(nil)
	if nsErr == nil {
		fd, sockErr = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it ends with this goroutine rather
		// than run other goroutines in the test namespace.
		t.Fatalf("return to original network namespace: %v", err)
	}
	runtime.UnlockOSThread()

	if nsErr != nil {
		t.Fatalf("create network namespace: %v", nsErr)
	}
	if sockErr != nil {
		ns.Close()
		t.Fatalf("socket in test namespace: %v", sockErr)
	}
	return ns, fd
}

// ethtoolLongNames maps the names `ethtool -k` prints for one-feature
// groups back to the kernel feature name.
var ethtoolLongNames = map[string]string{
	"rx-checksumming":              "rx-checksum",
	"udp-fragmentation-offload":    "tx-udp-fragmentation",
	"generic-segmentation-offload": "tx-generic-segmentation",
	"generic-receive-offload":      "rx-gro",
	"large-receive-offload":        "rx-lro",
	"rx-vlan-offload":              "rx-vlan-hw-parse",
	"tx-vlan-offload":              "tx-vlan-hw-insert",
	"ntuple-filters":               "rx-ntuple-filter",
	"receive-hashing":              "rx-hashing",
}

var ethtoolLine = regexp.MustCompile(`^\s*([^:]+): (on|off)( \[fixed\])?`)

// cliFeatures runs `ethtool -k ifname` inside the lab's namespace, as an
// independent reading of the features, keyed by kernel name. Group headers
// of several features (tx-checksumming, ...) are left out.
func (l *vethLab) cliFeatures(t *testing.T, ifname string) Features {
	t.Helper()
	bin, err := exec.LookPath("ethtool")
	if err != nil {
		t.Skip("the cross-check requires the ethtool CLI (apt-get install ethtool)")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("the cross-check requires nsenter (util-linux)")
	}
	dup, err := unix.Dup(int(l.ns))
	require.NoError(t, err)
	nsFile := os.NewFile(uintptr(dup), "netns")
	defer nsFile.Close()

	cmd := exec.Command(nsenter, "--net=/proc/self/fd/3", bin, "-k", ifname)
	cmd.ExtraFiles = []*os.File{nsFile}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", cmd, out)

	f := Features{Active: map[string]bool{}, Fixed: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := ethtoolLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		if long, ok := ethtoolLongNames[name]; ok {
			name = long
		}
		if slices.Contains([]string{"tx-checksumming", "scatter-gather", "tcp-segmentation-offload"}, name) {
			continue
		}
		f.Active[name] = m[2] == "on"
		f.Fixed[name] = m[3] != ""
	}
	require.NotEmpty(t, f.Active, "no features parsed from %s:\n%s", cmd, out)
	return f
}

// requireMatchesCLI checks every feature `ethtool -k` shows against f.
func (l *vethLab) requireMatchesCLI(t *testing.T, ifname string, f Features) {
	t.Helper()
	cli := l.cliFeatures(t, ifname)
	for name, on := range cli.Active {
		require.Contains(t, f.Active, name, "ethtool -k shows %s", name)
		require.Equal(t, on, f.Active[name], "%s active: ethtool -k vs Get", name)
		require.Equal(t, cli.Fixed[name], f.Fixed[name], "%s fixed: ethtool -k vs Get", name)
	}
	for name := range f.Active {
		require.Contains(t, cli.Active, name, "Get shows %s, ethtool -k does not", name)
	}
}

func TestGet(t *testing.T) {
	lab := newVethLab(t)
	f, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	for _, name := range []string{"rx-gro", "tx-tcp-segmentation", "rx-checksum", "tx-scatter-gather", "tx-generic-segmentation", "rx-lro"} {
		require.Contains(t, f.Active, name)
		require.Contains(t, f.Fixed, name)
	}
	require.Equal(t, len(f.Active), len(f.Fixed))
	require.NotContains(t, f.Active, "", "unused bits are left out")
	require.True(t, f.Fixed["rx-lro"], "veth has no LRO")
	require.False(t, f.Fixed["rx-gro"], "GRO is a software feature, always changeable")
	lab.requireMatchesCLI(t, "veth0", f)

	for name := range f.Active {
		if !slices.Contains(knownFeatures, name) {
			t.Logf("kernel feature %s is not in knownFeatures (Expand rejects it; Set accepts it)", name)
		}
	}
}

func TestGetNoDevice(t *testing.T) {
	lab := newVethLab(t)
	_, err := Get(lab.fd, "nosuchdev0")
	require.ErrorIs(t, err, unix.ENODEV)
	require.ErrorContains(t, err, "nosuchdev0")
	_, err = Get(lab.fd, "a-name-far-too-long-for-ifnamsiz")
	require.ErrorContains(t, err, "a-name-far-too-long-for-ifnamsiz")
}

func TestSetAndUndo(t *testing.T) {
	lab := newVethLab(t)
	orig, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	gro := !orig.Active["rx-gro"]
	tsoMembers, _ := expandIn("tso", sortedNames(orig))
	require.NotEmpty(t, tsoMembers)

	old, err := Set(lab.fd, "veth0", map[string]bool{"gro": gro, "tso": false})
	require.NoError(t, err)

	now, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	require.Equal(t, gro, now.Active["rx-gro"])
	wantOld := map[string]bool{"rx-gro": !gro}
	for _, m := range tsoMembers {
		require.False(t, now.Active[m], "%s after tso off", m)
		if orig.Active[m] && !orig.Fixed[m] {
			wantOld[m] = true
		}
	}
	require.Equal(t, wantOld, old, "Set returns the previous values of what it changed")
	lab.requireMatchesCLI(t, "veth0", now)

	// Asking for what is already there changes nothing.
	again, err := Set(lab.fd, "veth0", map[string]bool{"gro": gro, "tx-tcp-segmentation": false})
	require.NoError(t, err)
	require.Empty(t, again)

	undo, err := Set(lab.fd, "veth0", old)
	require.NoError(t, err)
	require.Len(t, undo, len(old))
	restored, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	require.Equal(t, orig, restored, "undo with the returned map restores the features exactly")
}

func TestSetShortNameSkipsFixedMembers(t *testing.T) {
	lab := newVethLab(t)
	orig, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	// veth: tx-checksum-ipv4/ipv6/fcoe-crc are off [fixed], the others on.
	require.True(t, orig.Fixed["tx-checksum-ipv4"])
	old, err := Set(lab.fd, "veth0", map[string]bool{"tx": false})
	require.NoError(t, err)
	for name := range old {
		require.False(t, orig.Fixed[name], "Set changed fixed %s", name)
	}
	require.Contains(t, old, "tx-checksum-ip-generic")
	now, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	members, _ := Expand("tx")
	for _, m := range members {
		require.False(t, now.Active[m], m)
	}
	_, err = Set(lab.fd, "veth0", old)
	require.NoError(t, err)
	restored, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	require.Equal(t, orig, restored)
}

func TestSetErrors(t *testing.T) {
	lab := newVethLab(t)
	orig, err := Get(lab.fd, "veth0")
	require.NoError(t, err)
	missing := slices.IndexFunc(knownFeatures, func(n string) bool { _, ok := orig.Active[n]; return !ok })

	cases := []struct {
		name string
		want map[string]bool
		msgs []string
	}{
		{"fixed full name", map[string]bool{"tx-checksum-ipv4": true}, []string{"tx-checksum-ipv4 is fixed on veth0"}},
		{"fixed short name", map[string]bool{"lro": true}, []string{"rx-lro is fixed on veth0"}},
		{"unknown", map[string]bool{"bogus-offload": true}, []string{`"bogus-offload"`, "rx, tx, sg, tso"}},
		{"conflict", map[string]bool{"gro": true, "rx-gro": false}, []string{"ask opposite values of rx-gro on veth0"}},
		{"one bad name spoils all", map[string]bool{"gro": !orig.Active["rx-gro"], "bogus": true}, []string{`"bogus"`}},
	}
	if missing >= 0 {
		name := knownFeatures[missing]
		cases = append(cases, struct {
			name string
			want map[string]bool
			msgs []string
		}{"lacking", map[string]bool{name: true}, []string{"veth0 has no feature " + name}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, err := Set(lab.fd, "veth0", tc.want)
			require.Error(t, err)
			for _, m := range tc.msgs {
				require.ErrorContains(t, err, m)
			}
			require.Nil(t, old)
			now, err := Get(lab.fd, "veth0")
			require.NoError(t, err)
			require.Equal(t, orig, now, "a refused Set changes nothing")
		})
	}

	// A fixed feature already at the wanted value is not an error.
	old, err := Set(lab.fd, "veth0", map[string]bool{"tx-checksum-ipv4": false, "lro": false})
	require.NoError(t, err)
	require.Empty(t, old)

	_, err = Set(lab.fd, "nosuchdev0", map[string]bool{"gro": true})
	require.True(t, errors.Is(err, unix.ENODEV), "%v", err)
}

func sortedNames(f Features) []string {
	names := make([]string, 0, len(f.Active))
	for n := range f.Active {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
