package pool

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// fakeLibvirt is a libvirt connection in memory: the domains, networks
// and volumes the provisioner made, by name, and knobs to make calls fail.
type fakeLibvirt struct {
	mu      sync.Mutex
	caps    string
	avail   uint64            // free bytes of the storage pool
	domains map[string]string // name -> XML
	nets    map[string]string
	vols    map[string][]byte
	calls   []string

	failDomain  error // DomainCreateXML fails with it
	failNetwork map[string]error
	failUpload  error
	closed      bool
}

const fakeCaps = `<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
<guest><os_type>hvm</os_type><arch name="x86_64"><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-x86_64</emulator><domain type="qemu"/></arch></guest>
</capabilities>`

const fakeCapsArm = `<capabilities><host><cpu><arch>aarch64</arch></cpu></host>
<guest><os_type>hvm</os_type><arch name="aarch64"><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-aarch64</emulator><domain type="kvm"/></arch></guest>
</capabilities>`

func newFakeLibvirt() *fakeLibvirt {
	return &fakeLibvirt{caps: fakeCaps, avail: 1 << 30, domains: map[string]string{}, nets: map[string]string{}, vols: map[string][]byte{}, failNetwork: map[string]error{}}
}

// record locks f for one call of the provisioner's, notes the call as c
// (its method and object) and returns the unlock.
func (f *fakeLibvirt) record(c string) (unlock func()) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	return f.mu.Unlock
}

// names lists the names of one kind of object, sorted.
func (f *fakeLibvirt) names(kind string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]map[string]string{"domain": f.domains, "network": f.nets}[kind]
	var out []string
	if kind == "volume" {
		for n := range f.vols {
			out = append(out, n)
		}
	}
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *fakeLibvirt) ConnectGetCapabilities() (string, error) { return f.caps, nil }

func (f *fakeLibvirt) NetworkCreateXML(x string) (libvirt.Network, error) {
	var n libvirtxml.Network
	if err := n.Unmarshal(x); err != nil {
		return libvirt.Network{}, err
	}
	defer f.record("NetworkCreateXML " + n.Name)()
	if err := f.failNetwork[n.Name]; err != nil {
		return libvirt.Network{}, err
	}
	if _, dup := f.nets[n.Name]; dup {
		return libvirt.Network{}, fmt.Errorf("network '%s' already exists", n.Name)
	}
	f.nets[n.Name] = x
	return libvirt.Network{Name: n.Name}, nil
}

func (f *fakeLibvirt) NetworkDestroy(n libvirt.Network) error {
	defer f.record("NetworkDestroy " + n.Name)()
	if _, ok := f.nets[n.Name]; !ok {
		return fmt.Errorf("no network %s", n.Name)
	}
	delete(f.nets, n.Name)
	return nil
}

func (f *fakeLibvirt) DomainCreateXML(x string, _ libvirt.DomainCreateFlags) (libvirt.Domain, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return libvirt.Domain{}, err
	}
	defer f.record("DomainCreateXML " + d.Name)()
	if f.failDomain != nil {
		return libvirt.Domain{}, f.failDomain
	}
	for _, i := range d.Devices.Interfaces {
		if _, ok := f.nets[i.Source.Network.Network]; !ok {
			return libvirt.Domain{}, fmt.Errorf("network %s not found", i.Source.Network.Network)
		}
	}
	f.domains[d.Name] = x
	return libvirt.Domain{Name: d.Name}, nil
}

func (f *fakeLibvirt) DomainDestroy(d libvirt.Domain) error {
	defer f.record("DomainDestroy " + d.Name)()
	if _, ok := f.domains[d.Name]; !ok {
		return fmt.Errorf("no domain %s", d.Name)
	}
	delete(f.domains, d.Name)
	return nil
}

func (f *fakeLibvirt) DomainResume(d libvirt.Domain) error {
	defer f.record("DomainResume " + d.Name)()
	return nil
}

// DomainOpenConsole writes the console the fake's guests print.
func (f *fakeLibvirt) DomainOpenConsole(d libvirt.Domain, _ libvirt.OptString, w io.Writer, _ uint32) error {
	_, err := io.WriteString(w, "Linux version 6.1.0\r\nlnst: no agent yet\r\n")
	return err
}

func (f *fakeLibvirt) StoragePoolLookupByName(name string) (libvirt.StoragePool, error) {
	if name != "default" {
		return libvirt.StoragePool{}, fmt.Errorf("Storage pool not found: no storage pool with matching name '%s'", name)
	}
	return libvirt.StoragePool{Name: name}, nil
}

func (f *fakeLibvirt) StoragePoolGetInfo(libvirt.StoragePool) (uint8, uint64, uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 2, 1 << 40, 0, f.avail, nil
}

func (f *fakeLibvirt) StorageVolLookupByName(p libvirt.StoragePool, name string) (libvirt.StorageVol, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vols[name]; !ok {
		return libvirt.StorageVol{}, errors.New("Storage volume not found")
	}
	return libvirt.StorageVol{Pool: p.Name, Name: name}, nil
}

func (f *fakeLibvirt) StorageVolCreateXML(p libvirt.StoragePool, x string, _ libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error) {
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(x); err != nil {
		return libvirt.StorageVol{}, err
	}
	defer f.record("StorageVolCreateXML " + v.Name)()
	if v.Capacity.Value > f.avail {
		return libvirt.StorageVol{}, errors.New("not enough space")
	}
	f.avail -= v.Capacity.Value
	f.vols[v.Name] = nil
	return libvirt.StorageVol{Pool: p.Name, Name: v.Name}, nil
}

func (f *fakeLibvirt) StorageVolUpload(v libvirt.StorageVol, r io.Reader, _, length uint64, _ libvirt.StorageVolUploadFlags) error {
	b, err := io.ReadAll(io.LimitReader(r, int64(length)))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUpload != nil {
		return f.failUpload
	}
	f.vols[v.Name] = b
	return nil
}

func (f *fakeLibvirt) StorageVolGetPath(v libvirt.StorageVol) (string, error) {
	return "/var/lib/libvirt/images/" + v.Name, nil
}

func (f *fakeLibvirt) StorageVolDelete(v libvirt.StorageVol, _ libvirt.StorageVolDeleteFlags) error {
	defer f.record("StorageVolDelete " + v.Name)()
	if _, ok := f.vols[v.Name]; !ok {
		return fmt.Errorf("no volume %s", v.Name)
	}
	delete(f.vols, v.Name)
	return nil
}

func (f *fakeLibvirt) ConnectListAllDomains(int32, libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error) {
	var out []libvirt.Domain
	for _, n := range f.names("domain") {
		out = append(out, libvirt.Domain{Name: n})
	}
	return out, uint32(len(out)), nil
}

func (f *fakeLibvirt) ConnectListAllNetworks(int32, libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, uint32, error) {
	var out []libvirt.Network
	for _, n := range f.names("network") {
		out = append(out, libvirt.Network{Name: n})
	}
	return out, uint32(len(out)), nil
}

func (f *fakeLibvirt) ConnectListAllStoragePools(int32, libvirt.ConnectListAllStoragePoolsFlags) ([]libvirt.StoragePool, uint32, error) {
	return []libvirt.StoragePool{{Name: "default"}}, 1, nil
}

func (f *fakeLibvirt) StoragePoolListAllVolumes(p libvirt.StoragePool, _ int32, _ uint32) ([]libvirt.StorageVol, uint32, error) {
	var out []libvirt.StorageVol
	for _, n := range f.names("volume") {
		out = append(out, libvirt.StorageVol{Pool: p.Name, Name: n})
	}
	return out, uint32(len(out)), nil
}

func (f *fakeLibvirt) DomainGetXMLDesc(d libvirt.Domain, _ libvirt.DomainXMLFlags) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x, ok := f.domains[d.Name]
	if !ok {
		return "", fmt.Errorf("no domain %s", d.Name)
	}
	return x, nil
}

func (f *fakeLibvirt) NetworkGetXMLDesc(n libvirt.Network, _ uint32) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x, ok := f.nets[n.Name]
	if !ok {
		return "", fmt.Errorf("no network %s", n.Name)
	}
	return x, nil
}

func (f *fakeLibvirt) Disconnect() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}
