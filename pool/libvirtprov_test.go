package pool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/lnst-go/lnst/pool/vmimage"
	"libvirt.org/go/libvirtxml"
)

// libvirtYAML is a pool file with two hypervisors.
const libvirtYAML = `provisioners:
  - name: hv1
    libvirt: {uri: "qemu+ssh://root@hv1/system", max: 2, memory: 384, image: default}
    interfaces:
      - {name: eth0, network: net1}
      - {name: eth1, network: net2}
  - name: hv2
    libvirt:
      uri: qemu:///system
      max: 3
      cpus: 2
      storage_pool: lnst
      boot_timeout: 5m
      accel: tcg
    interfaces:
      - {name: eth0, network: net1}
`

func TestParseLibvirtProvisioners(t *testing.T) {
	p, err := Parse("/etc/lnst/lab.yaml", []byte(libvirtYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Provisioners) != 2 {
		t.Fatalf("%d provisioners, want 2", len(p.Provisioners))
	}
	hv1, hv2 := p.Provisioners[0], p.Provisioners[1]
	if hv1.Libvirt == nil || *hv1.Libvirt != (LibvirtSpec{URI: "qemu+ssh://root@hv1/system", Max: 2, MemoryMiB: 384, Image: "default"}) || hv1.Max != 2 {
		t.Errorf("hv1 = %+v, libvirt %+v", hv1, hv1.Libvirt)
	}
	if hv2.Libvirt == nil || *hv2.Libvirt != (LibvirtSpec{URI: "qemu:///system", Max: 3, CPUs: 2, StoragePool: "lnst", BootTimeout: 5 * time.Minute, Accel: "tcg"}) {
		t.Errorf("hv2 libvirt = %+v", hv2.Libvirt)
	}
	provs := Provisioners(p, nil)
	lp, ok := provs[1].(*LibvirtProvisioner)
	if !ok {
		t.Fatalf("provisioner hv1 is a %T, want *LibvirtProvisioner", provs[1])
	}
	// Its machines are slots; their networks are the hypervisor's own.
	var _ SlotProvisioner = lp
	h := lp.Template(2)
	if h.Name != "hv1#2" || h.Arch != "x86_64" || len(h.Ifaces) != 2 || h.Ifaces[0].Net != "hv1:net1" || h.Ifaces[1].Net != "hv1:net2" {
		t.Errorf("Template(2) = %+v", h)
	}
	if lp.Max() != 2 {
		t.Errorf("Max() = %d, want 2", lp.Max())
	}
	// Guests under TCG say so (lnsttest's Host.Emulated), others not.
	if h.Params[EmulatedParam] != "" {
		t.Errorf("hv1 (accel auto) machines have param %s=%q", EmulatedParam, h.Params[EmulatedParam])
	}
	if h := provs[2].(*LibvirtProvisioner).Template(1); h.Params[EmulatedParam] != "true" {
		t.Errorf("hv2 (accel tcg) machines: params %v, want %s=true", h.Params, EmulatedParam)
	}
}

func TestParseLibvirtErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"provisioners:\n  - name: hv\n    libvirt: {max: 2}\n", `lab.yaml:3: provisioner "hv": libvirt: missing uri`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: xen:///system\n      max: 2\n", `lab.yaml:4: provisioner "hv": libvirt: uri "xen:///system": driver "xen"`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu+foo://h/system\n      max: 2\n", `lab.yaml:4: provisioner "hv": libvirt: uri "qemu+foo://h/system": transport "foo"`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu:///system\n      max: 0\n", `lab.yaml:5: provisioner "hv": libvirt: max 0: want 1 to 200 guests`},
		{"provisioners:\n  - name: hv\n    libvirt: {uri: qemu:///system}\n", `lab.yaml:3: provisioner "hv": libvirt: max 0`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu:///system\n      max: many\n", `lab.yaml:5: provisioner "hv": libvirt: max: want a number of guests, not "many"`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu:///system\n      max: 1\n      memory: 64\n", `lab.yaml:6: provisioner "hv": libvirt: memory 64: want at least 128`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu:///system\n      max: 1\n      boot_timeout: soon\n", `lab.yaml:6: provisioner "hv": libvirt: boot_timeout: "soon" is not a positive duration`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu:///system\n      max: 1\n      disk: 5\n", `lab.yaml:6: provisioner "hv": libvirt: unknown field "disk"`},
		{"provisioners:\n  - name: hv\n    libvirt: {uri: qemu:///system, max: 1}\n    max: 3\n", `lab.yaml:4: provisioner "hv": max: a libvirt provisioner's max is in its libvirt field`},
		{"provisioners:\n  - name: hv\n    libvirt: {uri: qemu:///system, max: 1}\n    reserve: ./r.sh\n", `lab.yaml:3: provisioner "hv": libvirt and reserve`},
		{"provisioners:\n  - name: hv\n    libvirt: {uri: qemu:///system, max: 1}\n    insecure: true\n", `lab.yaml:3: provisioner "hv": libvirt and tls or insecure`},
		{"provisioners:\n  - name: hv\n    libvirt: {uri: qemu:///system, max: 1}\n    arch: aarch64\n", `lab.yaml:3: provisioner "hv": libvirt and arch "aarch64"`},
		{"provisioners:\n  - name: hv\n    libvirt:\n      uri: qemu:///system\n      max: 1\n      accel: hvf\n", `lab.yaml:6: provisioner "hv": libvirt: accel "hvf": want kvm, tcg or auto`},
		{"provisioners:\n  - name: hv\n    libvirt:\n", `lab.yaml:3: provisioner "hv": libvirt: want {uri: ..., max: N}`},
	} {
		_, err := Parse("lab.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestLibvirtDomainXML(t *testing.T) {
	run := libvirtRun{ID: "0a1b2c3d", Controller: "ctl.example", PID: 42, Start: 1234}
	x, err := domainXML(libvirtDomainSpec{
		Name: "lnst-0a1b2c3d-hv1-1", Run: run, Type: "qemu", Arch: "x86_64", MemoryMiB: 512, CPUs: 1,
		Kernel: "/img/k", Initrd: "/img/i", Cmdline: "console=ttyS0 lnst.hostname=lnst-vm-1",
		Mgmt: libvirtNIC{MAC: "52:54:00:00:00:00", Network: "lnst-0a1b2c3d-hv1-mgmt"},
		NICs: []libvirtNIC{{MAC: "52:54:00:00:00:01", Network: "lnst-0a1b2c3d-hv1-net-net1"}, {MAC: "52:54:00:00:00:02", Network: "lnst-0a1b2c3d-hv1-net-net2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		t.Fatalf("%v\n%s", err, x)
	}
	if d.Type != "qemu" || d.Name != "lnst-0a1b2c3d-hv1-1" || d.Memory.Value != 512 || d.Memory.Unit != "MiB" || d.VCPU.Value != 1 {
		t.Errorf("domain %s", x)
	}
	if d.OS.Kernel != "/img/k" || d.OS.Initrd != "/img/i" || d.OS.Cmdline != "console=ttyS0 lnst.hostname=lnst-vm-1" || d.OS.Type.Arch != "x86_64" || d.OS.Type.Type != "hvm" {
		t.Errorf("direct kernel boot: %+v", d.OS)
	}
	if d.CPU == nil || d.CPU.Mode != "maximum" {
		t.Errorf("a TCG guest's CPU is %+v, want mode maximum", d.CPU)
	}
	if d.Features.TCG == nil || d.Features.TCG.TBCache == nil || d.Features.TCG.TBCache.Size != vmTBSizeMiB || d.Features.TCG.TBCache.Unit != "MiB" {
		t.Errorf("a TCG guest's translation cache: %s, want %d MiB as the VM lab's", x, vmTBSizeMiB)
	}
	var nics []string
	for _, i := range d.Devices.Interfaces {
		if i.Model.Type != "virtio" || i.ROM == nil || i.ROM.Enabled != "no" {
			t.Errorf("NIC %+v: want virtio without option ROM", i)
		}
		nics = append(nics, i.MAC.Address+"@"+i.Source.Network.Network)
	}
	want := []string{"52:54:00:00:00:00@lnst-0a1b2c3d-hv1-mgmt", "52:54:00:00:00:01@lnst-0a1b2c3d-hv1-net-net1", "52:54:00:00:00:02@lnst-0a1b2c3d-hv1-net-net2"}
	if !slices.Equal(nics, want) {
		t.Errorf("NICs %v, want %v", nics, want)
	}
	if len(d.Devices.Disks) != 0 || len(d.Devices.Serials) != 1 || d.Devices.MemBalloon.FreePageReporting != "on" || d.Features.ACPI == nil || len(d.Devices.Controllers) != 1 || d.Devices.Controllers[0].Model != "none" {
		t.Errorf("devices: %s", x)
	}
	if got, ok := parseRunMetadata(d.Metadata.XML); !ok || got != run {
		t.Errorf("metadata %q gives run %+v, %v; want %+v", d.Metadata.XML, got, ok, run)
	}
	if n := hostCPUs(fakeCaps); n != 1 {
		t.Errorf("hostCPUs of capabilities without topology = %d, want 1", n)
	}
	if n := hostCPUs(`<capabilities><host><topology><cells num="2"><cell id="0"><cpus num="4"/></cell><cell id="1"><cpus num="4"/></cell></cells></topology></host></capabilities>`); n != 8 {
		t.Errorf("hostCPUs of two cells of 4 = %d, want 8", n)
	}
	kvm, _ := domainXML(libvirtDomainSpec{Name: "k", Type: "kvm", Arch: "x86_64", MemoryMiB: 512, CPUs: 1})
	if !strings.Contains(kvm, `<cpu mode="host-passthrough">`) || strings.Contains(kvm, "tb-cache") {
		t.Errorf("a KVM guest: %s", kvm)
	}
}

func TestLibvirtNetworkXML(t *testing.T) {
	run := libvirtRun{ID: "0a1b2c3d"}
	for _, tc := range []struct {
		name, addr string
	}{{"lnst-0a1b2c3d-hv1-net-net1", ""}, {"lnst-0a1b2c3d-hv1-mgmt", "198.19.201.1/24"}} {
		x, err := networkXML(tc.name, run, tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		var n libvirtxml.Network
		if err := n.Unmarshal(x); err != nil {
			t.Fatal(err)
		}
		// Isolated: no forward mode (NAT, route, bridge).
		if n.Name != tc.name || n.Forward != nil || n.Bridge == nil || n.Bridge.STP != "off" {
			t.Errorf("network %s", x)
		}
		if r, ok := parseRunMetadata(n.Metadata.XML); !ok || r.ID != run.ID {
			t.Errorf("network %s: metadata run %+v", tc.name, r)
		}
		switch tc.addr {
		case "":
			// No address: libvirt starts no dnsmasq, so no DHCP or DNS.
			if len(n.IPs) != 0 || n.DNS != nil {
				t.Errorf("test network %s", x)
			}
		default:
			if len(n.IPs) != 1 || n.IPs[0].Address != "198.19.201.1" || n.IPs[0].Prefix != 24 || n.IPs[0].DHCP != nil || n.DNS == nil || n.DNS.Enable != "no" {
				t.Errorf("management network %s", x)
			}
		}
	}
	if _, err := networkXML("x", run, "198.19.201.1"); err == nil {
		t.Error("a management address without prefix: no error")
	}
}

// newTestLibvirt is a LibvirtProvisioner for spec on fake, with an image
// and agent of small files, and guests whose agents answer at once (alive
// false: never).
func newTestLibvirt(t *testing.T, fake *fakeLibvirt, max int, alive *atomic.Bool) *LibvirtProvisioner {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd", "agent"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f+" bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := ExecSpec{Name: "hv1", Libvirt: &LibvirtSpec{URI: "qemu+ssh://root@hv1/system", Max: max},
		Ifaces: []Iface{{Name: "eth0", Net: "net1"}, {Name: "eth1", Net: "net2"}}}
	var log bytes.Buffer
	p := NewLibvirtProvisioner(spec, &log)
	p.dial = func(ctx context.Context, uri string) (libvirtConn, error) { return fake, nil }
	p.image = func(context.Context) (*vmimage.Image, error) {
		return &vmimage.Image{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd")}, nil
	}
	p.agentExe = func(string) (string, error) { return filepath.Join(dir, "agent"), nil }
	p.waitAgent = func(ctx context.Context, h Host, timeout time.Duration) error {
		if alive != nil && !alive.Load() {
			return errors.New("its agent did not answer within 3m0s")
		}
		return nil
	}
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestLibvirtReserveRelease: a reservation is a domain on the run's
// networks with a volume of its own; networks live while a guest uses
// them; releasing every guest leaves nothing on the hypervisor, nor the
// run's directory on the controller.
func TestLibvirtReserveRelease(t *testing.T) {
	fake := newFakeLibvirt()
	p := newTestLibvirt(t, fake, 2, nil)
	ctx := testCtx(t)
	m1, err := p.Reserve(ctx, Request{Host: "hv1#1"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := p.Reserve(ctx, Request{Host: "hv1#2"})
	if err != nil {
		t.Fatal(err)
	}
	run := p.run.ID
	pre := "lnst-" + run + "-hv1-"
	if got, want := fake.names("domain"), []string{pre + "1", pre + "2"}; !slices.Equal(got, want) {
		t.Errorf("domains %v, want %v", got, want)
	}
	if got, want := fake.names("network"), []string{pre + "mgmt", pre + "net-net1", pre + "net-net2"}; !slices.Equal(got, want) {
		t.Errorf("networks %v, want %v", got, want)
	}
	vols := fake.names("volume")
	if len(vols) != 3 || vols[0] != pre+"1-initrd" || vols[1] != pre+"2-initrd" || !strings.HasPrefix(vols[2], "lnst-kernel-") {
		t.Errorf("volumes %v: want the kernel once and an initramfs per guest", vols)
	}
	// The machine is reached over TLS at its management address with the
	// run's certificates, which verify against each other.
	h := m1.Host
	if !strings.HasPrefix(h.Agent, "198.19.") || !strings.HasSuffix(h.Agent, ":7000") || h.TLS.CA == "" || h.Arch != "x86_64" || h.Ifaces[0].HWAddr == "" {
		t.Errorf("machine 1 host %+v", h)
	}
	if _, err := agentconn.ClientTLS(h.TLS.CA, h.TLS.Cert, h.TLS.Key); err != nil {
		t.Errorf("controller certificate: %v", err)
	}
	dir := p.dir
	if err := p.Release(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if got := fake.names("network"); len(got) != 3 {
		t.Errorf("after one release the other guest's networks are %v, want all 3", got)
	}
	if got := fake.names("domain"); !slices.Equal(got, []string{pre + "2"}) {
		t.Errorf("after one release: domains %v", got)
	}
	if err := p.Release(ctx, m2); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(ctx, m2); err != nil {
		t.Errorf("second release: %v", err)
	}
	if d, n := fake.names("domain"), fake.names("network"); len(d)+len(n) != 0 {
		t.Errorf("after releasing both: domains %v, networks %v", d, n)
	}
	if vols := fake.names("volume"); len(vols) != 1 || !strings.HasPrefix(vols[0], "lnst-kernel-") {
		t.Errorf("after releasing both: volumes %v, want the shared kernel only", vols)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the run's directory %s is still there: %v", dir, err)
	}
	if !fake.closed {
		t.Error("the connection is still open with no guest")
	}
}

// TestLibvirtMax: a Reserve beyond max waits for a release, and gives up
// with ctx, naming the provisioner.
func TestLibvirtMax(t *testing.T) {
	fake := newFakeLibvirt()
	p := newTestLibvirt(t, fake, 1, nil)
	ctx := testCtx(t)
	m, err := p.Reserve(ctx, Request{})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Reserve(short, Request{}); err == nil || !strings.Contains(err.Error(), "provisioner hv1") || !strings.Contains(err.Error(), "one of its 1 guests") {
		t.Errorf("Reserve beyond max = %v", err)
	}
	if n := len(fake.names("domain")); n != 1 {
		t.Errorf("%d domains, want 1", n)
	}
	done := make(chan error, 1)
	go func() {
		m2, err := p.Reserve(ctx, Request{})
		if err == nil {
			err = p.Release(ctx, m2)
		}
		done <- err
	}()
	if err := p.Release(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Reserve after a release: %v", err)
	}
	if d, n := fake.names("domain"), fake.names("network"); len(d)+len(n) != 0 {
		t.Errorf("domains %v, networks %v left", d, n)
	}
}

// TestLibvirtFailureLeavesNothing: a reservation that fails at any step
// (a network, the domain, the agent's boot, the upload) undoes what it
// made: no domain, network or guest volume is left, and its slot is free.
func TestLibvirtFailureLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeLibvirt, alive *atomic.Bool)
		want  string
	}{
		{"domain", func(f *fakeLibvirt, _ *atomic.Bool) {
			f.failDomain = errors.New("internal error: qemu unexpectedly closed the monitor")
		}, "start guest lnst-"},
		{"agent", func(f *fakeLibvirt, a *atomic.Bool) { a.Store(false) }, "its agent did not answer"},
		{"network", func(f *fakeLibvirt, _ *atomic.Bool) {
			f.failNetwork["lnst-"+thisRun().ID+"-hv1-net-net2"] = errors.New("bridge name virbr3 in use")
		}, `create network lnst-` + thisRun().ID + `-hv1-net-net2 for label "net2"`},
		{"upload", func(f *fakeLibvirt, _ *atomic.Bool) { f.failUpload = errors.New("stream aborted") }, "upload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeLibvirt()
			var alive atomic.Bool
			alive.Store(true)
			p := newTestLibvirt(t, fake, 1, &alive)
			tc.setup(fake, &alive)
			_, err := p.Reserve(testCtx(t), Request{})
			if err == nil || !strings.Contains(err.Error(), "provisioner hv1 (libvirt qemu+ssh://root@hv1/system)") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reserve = %v, want an error naming the hypervisor and %q", err, tc.want)
			}
			if d, n := fake.names("domain"), fake.names("network"); len(d)+len(n) != 0 {
				t.Errorf("left: domains %v, networks %v", d, n)
			}
			for _, v := range fake.names("volume") {
				if !strings.HasPrefix(v, "lnst-kernel-") {
					t.Errorf("left: volume %s", v)
				}
			}
			// The slot and the token are free again.
			fake.failDomain, fake.failUpload, fake.failNetwork = nil, nil, map[string]error{}
			alive.Store(true)
			m, err := p.Reserve(testCtx(t), Request{})
			if err != nil {
				t.Fatalf("Reserve after the failure: %v", err)
			}
			if m.ID != "1" {
				t.Errorf("slot %s, want 1 again", m.ID)
			}
			p.Release(testCtx(t), m)
		})
	}
}

// TestLibvirtBadHypervisor: an unreachable URI, a hypervisor without the
// image's arch and a full storage pool fail the Reserve with an error
// naming the hypervisor, and define nothing.
func TestLibvirtBadHypervisor(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		p := newTestLibvirt(t, newFakeLibvirt(), 1, nil)
		p.dial = dialLibvirt
		p.lv.URI = "qemu+unix:///system?socket=" + filepath.Join(t.TempDir(), "no-libvirtd.sock")
		_, err := p.Reserve(testCtx(t), Request{})
		if err == nil || !strings.Contains(err.Error(), "provisioner hv1 (libvirt "+p.lv.URI+"): the hypervisor is unreachable") || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("Reserve = %v", err)
		}
	})
	t.Run("arch", func(t *testing.T) {
		fake := newFakeLibvirt()
		fake.caps = fakeCapsArm
		p := newTestLibvirt(t, fake, 1, nil)
		_, err := p.Reserve(testCtx(t), Request{})
		if err == nil || !strings.Contains(err.Error(), "provisioner hv1 (libvirt qemu+ssh://root@hv1/system): the hypervisor runs no x86_64 guests, the VM image's arch (it runs: aarch64)") {
			t.Errorf("Reserve = %v", err)
		}
		if len(fake.calls) != 0 || !fake.closed {
			t.Errorf("calls %v, closed %v: want none made, the connection closed", fake.calls, fake.closed)
		}
	})
	t.Run("no kvm", func(t *testing.T) {
		fake := newFakeLibvirt()
		p := newTestLibvirt(t, fake, 1, nil)
		p.lv.Accel = "kvm"
		_, err := p.Reserve(testCtx(t), Request{})
		if err == nil || !strings.Contains(err.Error(), "provisioner hv1 (libvirt qemu+ssh://root@hv1/system): accel kvm: the hypervisor offers no KVM for x86_64 guests (domain types: qemu)") {
			t.Errorf("Reserve = %v", err)
		}
	})
	t.Run("full", func(t *testing.T) {
		fake := newFakeLibvirt()
		// Room for the kernel, not for a guest's initramfs.
		fake.avail = uint64(len("vmlinuz bytes")) + 10
		p := newTestLibvirt(t, fake, 1, nil)
		_, err := p.Reserve(testCtx(t), Request{})
		if err == nil || !strings.Contains(err.Error(), `provisioner hv1 (libvirt qemu+ssh://root@hv1/system): storage pool "default" is full: 0.0 MiB free, the guest's initramfs needs`) {
			t.Errorf("Reserve = %v", err)
		}
		if d, n := fake.names("domain"), fake.names("network"); len(d)+len(n) != 0 {
			t.Errorf("left: domains %v, networks %v", d, n)
		}
	})
	t.Run("no pool", func(t *testing.T) {
		fake := newFakeLibvirt()
		p := newTestLibvirt(t, fake, 1, nil)
		p.lv.StoragePool = "lnst"
		_, err := p.Reserve(testCtx(t), Request{})
		if err == nil || !strings.Contains(err.Error(), `provisioner hv1 (libvirt qemu+ssh://root@hv1/system): storage pool "lnst": Storage pool not found`) {
			t.Errorf("Reserve = %v", err)
		}
	})
}

// TestLibvirtGC: gc removes the domains, networks and guest volumes of a
// dead run, keeps a live run's, the shared kernel and what lnst did not
// make.
func TestLibvirtGC(t *testing.T) {
	fake := newFakeLibvirt()
	dead := newTestLibvirt(t, fake, 2, nil)
	dead.run = libvirtRun{ID: "dead0001", Controller: "ctl", PID: 41, Start: 7}
	live := newTestLibvirt(t, fake, 1, nil)
	live.spec.Name = "hv2"
	live.run = libvirtRun{ID: "11ve0002", Controller: "ctl", PID: 42, Start: 8}
	ctx := testCtx(t)
	for range 2 {
		if _, err := dead.Reserve(ctx, Request{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dead.dir) }) // a killed run's, on the controller
	lm, err := live.Reserve(ctx, Request{})
	if err != nil {
		t.Fatal(err)
	}
	fake.nets["default"] = "<network><name>default</name></network>"
	fake.domains["lnst-handmade"] = "<domain type='qemu'><name>lnst-handmade</name></domain>"

	rep, err := libvirtGC(fake, func(r libvirtRun) (bool, string) {
		return r.ID == live.run.ID, "run " + r.ID
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fake.names("domain"), []string{"lnst-11ve0002-hv2-1", "lnst-handmade"}; !slices.Equal(got, want) {
		t.Errorf("domains after gc %v, want %v", got, want)
	}
	if got, want := fake.names("network"), []string{"default", "lnst-11ve0002-hv2-mgmt", "lnst-11ve0002-hv2-net-net1", "lnst-11ve0002-hv2-net-net2"}; !slices.Equal(got, want) {
		t.Errorf("networks after gc %v, want %v", got, want)
	}
	vols := fake.names("volume")
	if len(vols) != 2 || vols[0] != "lnst-11ve0002-hv2-1-initrd" || !strings.HasPrefix(vols[1], "lnst-kernel-") {
		t.Errorf("volumes after gc %v", vols)
	}
	// 2 domains, 3 networks, 2 volumes.
	if len(rep.Removed) != 7 || len(rep.Kept) != 4 {
		t.Errorf("report: removed %q, kept %q", rep.Removed, rep.Kept)
	}
	// The dead run's directory on the controller (its CA) goes too, the
	// live run's stays.
	if err := rep.removeRunDirs(filepath.Dir(dead.dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead.dir); !os.IsNotExist(err) {
		t.Errorf("the dead run's directory %s: %v", dead.dir, err)
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("the live run's directory: %v", err)
	}
	if err := live.Release(ctx, lm); err != nil {
		t.Fatal(err)
	}
}

// TestRunAlive: a run is alive while a process of its pid with its start
// time lives on its controller's machine; one of another machine is kept.
func TestRunAlive(t *testing.T) {
	me := thisRun()
	if ok, why := runAlive(me, me.Controller); !ok {
		t.Errorf("this run: %s", why)
	}
	gone := me
	gone.Start++
	if ok, why := runAlive(gone, me.Controller); ok || !strings.Contains(why, "is gone") {
		t.Errorf("a run whose pid was reused: alive %v, %s", ok, why)
	}
	if ok, why := runAlive(gone, "elsewhere"); !ok || !strings.Contains(why, "cannot tell") {
		t.Errorf("a run of another machine: alive %v, %s", ok, why)
	}
}

// TestLibvirtBootSlots: guests boot one per hypervisor CPU at once (the
// fake's capabilities list none: one), the next starting once the first's
// agent answered.
func TestLibvirtBootSlots(t *testing.T) {
	fake := newFakeLibvirt()
	p := newTestLibvirt(t, fake, 2, nil)
	booting := make(chan string)
	answer := make(chan struct{})
	p.waitAgent = func(ctx context.Context, h Host, _ time.Duration) error {
		booting <- h.Name
		<-answer
		return nil
	}
	ctx := testCtx(t)
	ms := make(chan *Machine, 2)
	for range 2 {
		go func() {
			m, err := p.Reserve(ctx, Request{})
			if err != nil {
				t.Error(err)
			}
			ms <- m
		}()
	}
	<-booting
	// The other guest waits for the slot: it is not started.
	select {
	case name := <-booting:
		t.Fatalf("%s boots while the other does", name)
	case <-time.After(200 * time.Millisecond):
	}
	if n := len(fake.names("domain")); n != 1 {
		t.Errorf("%d domains while the first boots, want 1", n)
	}
	answer <- struct{}{}
	<-booting
	answer <- struct{}{}
	for range 2 {
		if m := <-ms; m != nil {
			p.Release(ctx, m)
		}
	}
}
