package pool

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// libvirt parses a provisioner's libvirt field.
func (ps *poolParser) libvirt(f field, what string) (*LibvirtSpec, error) {
	v := resolve(f.value)
	what += ": libvirt"
	if isNull(v) {
		return nil, ps.errorf(f.key.Line, "%s: want {uri: ..., max: N}, not an empty value", what)
	}
	fs, err := ps.mapping(v, what, libvirtFields)
	if err != nil {
		return nil, err
	}
	lv := &LibvirtSpec{}
	strs := map[string]*string{"uri": &lv.URI, "image": &lv.Image, "storage_pool": &lv.StoragePool, "accel": &lv.Accel}
	for _, name := range []string{"uri", "image", "storage_pool", "accel"} {
		if f, ok := fs[name]; ok {
			if *strs[name], err = ps.str(f, what); err != nil {
				return nil, err
			}
		}
	}
	ints := map[string]*int{"max": &lv.Max, "memory": &lv.MemoryMiB, "cpus": &lv.CPUs}
	unit := map[string]string{"max": "a number of guests", "memory": "MiB of memory per guest", "cpus": "a number of virtual CPUs per guest"}
	for _, name := range []string{"max", "memory", "cpus"} {
		if f, ok := fs[name]; ok {
			n := resolve(f.value)
			if n.Kind != yaml.ScalarNode || n.Decode(ints[name]) != nil {
				return nil, ps.errorf(n.Line, "%s: %s: want %s, not %s", what, name, unit[name], valueName(n))
			}
		}
	}
	if f, ok := fs["boot_timeout"]; ok {
		s, err := ps.str(f, what)
		if err != nil {
			return nil, err
		}
		if lv.BootTimeout, err = time.ParseDuration(s); err != nil || lv.BootTimeout <= 0 {
			return nil, ps.errorf(resolve(f.value).Line, "%s: boot_timeout: %q is not a positive duration such as 90s or 3m", what, s)
		}
	}
	// Each field's error at its own line; a missing one at the field's.
	for _, name := range []string{"uri", "max", "memory", "cpus", "accel"} {
		line := f.key.Line
		if g, ok := fs[name]; ok {
			line = resolve(g.value).Line
		} else if name != "uri" && name != "max" {
			continue
		}
		if err := lv.check(name); err != nil {
			return nil, ps.errorf(line, "%s: %v", what, err)
		}
	}
	return lv, nil
}

// check checks one field of the spec, by its YAML name.
func (lv *LibvirtSpec) check(name string) error {
	switch name {
	case "uri":
		if lv.URI == "" {
			return errors.New(`missing uri: the hypervisor's libvirt URI ("qemu:///system", "qemu+ssh://root@hv1/system")`)
		}
		u, err := url.Parse(lv.URI)
		if err != nil || u.Scheme == "" {
			return fmt.Errorf("uri %q: not a libvirt URI such as qemu:///system or qemu+ssh://root@hv1/system", lv.URI)
		}
		driver, transport, _ := strings.Cut(u.Scheme, "+")
		if driver != "qemu" {
			return fmt.Errorf("uri %q: driver %q: the guests are QEMU guests, want qemu:// or qemu+TRANSPORT://", lv.URI, driver)
		}
		switch transport {
		case "", "unix", "ssh", "tls", "tcp":
		default:
			return fmt.Errorf("uri %q: transport %q: want unix, ssh, tls or tcp", lv.URI, transport)
		}
	case "max":
		if lv.Max < 1 || lv.Max > libvirtMaxGuests {
			return fmt.Errorf("max %d: want 1 to %d guests", lv.Max, libvirtMaxGuests)
		}
	case "memory":
		if lv.MemoryMiB != 0 && lv.MemoryMiB < 128 {
			return fmt.Errorf("memory %d: want at least 128 (MiB): the guest unpacks its initramfs into it", lv.MemoryMiB)
		}
	case "cpus":
		if lv.CPUs < 0 || lv.CPUs > 64 {
			return fmt.Errorf("cpus %d: want 1 to 64", lv.CPUs)
		}
	case "accel":
		switch lv.Accel {
		case "", "auto", "kvm", "tcg":
		default:
			return fmt.Errorf("accel %q: want kvm, tcg or auto", lv.Accel)
		}
	}
	return nil
}

// checkLibvirt checks a libvirt provisioner's spec as a whole: its
// fields, and that it has none of an exec provisioner's.
func (p *ExecSpec) checkLibvirt() error {
	lv := p.Libvirt
	if lv == nil {
		return nil
	}
	for _, f := range []string{"uri", "max", "memory", "cpus", "accel"} {
		if err := lv.check(f); err != nil {
			return fmt.Errorf("libvirt: %w", err)
		}
	}
	for name, v := range map[string]string{"reserve": p.Reserve, "release": p.Release, "alive": p.Alive} {
		if v != "" {
			return fmt.Errorf("libvirt and %s: a libvirt provisioner runs no commands, give one or the other", name)
		}
	}
	if p.TLS != (TLSFiles{}) || p.Insecure || p.InsecureAnyAddress {
		return errors.New("libvirt and tls or insecure: a libvirt provisioner makes its guests' certificates itself")
	}
	if p.Arch != "" && p.Arch != libvirtArch {
		return fmt.Errorf("libvirt and arch %q: the guests boot the VM image, whose arch is %s", p.Arch, libvirtArch)
	}
	return nil
}
