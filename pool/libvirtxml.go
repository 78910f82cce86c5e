package pool

import (
	"encoding/xml"
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// The libvirt provisioner's objects on a hypervisor are named
// "lnst-<run>-...", and carry in their <metadata> an element of
// libvirtMetaNS naming their run and the controller that made them, by
// which `lnst gc --libvirt` tells a dead run's leftovers from a live
// run's.
const (
	libvirtPrefix   = "lnst-"
	libvirtMetaNS   = "https://github.com/lnst-go/lnst/libvirt/1"
	libvirtMetaName = "run"
)

// libvirtRun is the run an object belongs to, as its metadata says.
type libvirtRun struct {
	XMLName xml.Name `xml:"run"`
	// ID is the run's id, in every object's name.
	ID string `xml:"id,attr"`
	// Controller is the hostname of the machine of the controller; PID
	// and Start (its start time in clock ticks since boot, from
	// /proc/PID/stat) say whether the controller still lives there.
	Controller string `xml:"controller,attr"`
	PID        int    `xml:"pid,attr"`
	Start      uint64 `xml:"start,attr"`
}

// metadataXML is the run's element for a <metadata>.
func (r libvirtRun) metadataXML() string {
	return fmt.Sprintf(`<lnst:run xmlns:lnst=%q id=%q controller=%q pid="%d" start="%d"/>`,
		libvirtMetaNS, r.ID, r.Controller, r.PID, r.Start)
}

// parseRunMetadata finds the run element in the inner XML of a
// <metadata>; ok is false when there is none.
func parseRunMetadata(inner string) (r libvirtRun, ok bool) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	for {
		tok, err := dec.Token()
		if err != nil {
			return r, false
		}
		se, isStart := tok.(xml.StartElement)
		if !isStart || se.Name.Space != libvirtMetaNS || se.Name.Local != libvirtMetaName {
			continue
		}
		if dec.DecodeElement(&r, &se) != nil || r.ID == "" {
			return libvirtRun{}, false
		}
		r.XMLName = xml.Name{}
		return r, true
	}
}

// libvirtNIC is one NIC of a domain: its hardware address and the libvirt
// network it is on.
type libvirtNIC struct {
	MAC, Network string
}

// libvirtDomainSpec is what domainXML needs to describe a guest.
type libvirtDomainSpec struct {
	Name      string
	Run       libvirtRun
	Type      string // "qemu" (TCG) or "kvm"
	Arch      string
	MemoryMiB int
	CPUs      int
	// Kernel and Initrd are paths on the hypervisor (volumes of its
	// storage pool); Cmdline the kernel's command line.
	Kernel, Initrd, Cmdline string
	// Mgmt is the management NIC, NICs the test NICs in order.
	Mgmt libvirtNIC
	NICs []libvirtNIC
}

// domainXML is the XML of a transient domain for s: direct kernel boot,
// ACPI, no USB, a serial console on a pty (virDomainOpenConsole reads
// it), one virtio
// NIC without option ROM per network, and a balloon with free page
// reporting, which gives memory the guest freed back to the hypervisor
// (as the VM lab's guests do, see qemuArgs). Under TCG the CPU model is
// "maximum" (QEMU's -cpu max: RDRAND, so the guest's random pool is ready
// at boot) and its translation cache is capped at vmTBSizeMiB, as the VM
// lab's guests' (QEMU's default is up to 1 GiB, which a guest fills with
// code that runs once); under KVM the host's CPU is passed through.
func domainXML(s libvirtDomainSpec) (string, error) {
	cpu := &libvirtxml.DomainCPU{Mode: "maximum", Match: "exact"}
	var tcg *libvirtxml.DomainFeatureTCG
	if s.Type == "kvm" {
		cpu = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	} else {
		tcg = &libvirtxml.DomainFeatureTCG{TBCache: &libvirtxml.DomainFeatureTCGTBCache{Unit: "MiB", Size: vmTBSizeMiB}}
	}
	port := uint(0)
	d := &libvirtxml.Domain{
		Type:     s.Type,
		Name:     s.Name,
		Metadata: &libvirtxml.DomainMetadata{XML: s.Run.metadataXML()},
		Memory:   &libvirtxml.DomainMemory{Value: uint(s.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(s.CPUs)},
		CPU:      cpu,
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: s.Arch, Type: "hvm"},
			Kernel:  s.Kernel,
			Initrd:  s.Initrd,
			Cmdline: s.Cmdline,
		},
		// ACPI and the APIC as QEMU gives them by default (the VM lab's
		// guests): libvirt leaves them out unless asked.
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}, TCG: tcg},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "virtio", FreePageReporting: "on"},
			// No USB controller, which libvirt adds by default: the guest
			// has no use for one, and its driver would probe it at boot.
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
		},
	}
	for _, n := range append([]libvirtNIC{s.Mgmt}, s.NICs...) {
		d.Devices.Interfaces = append(d.Devices.Interfaces, libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: n.MAC},
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			ROM:    &libvirtxml.DomainROM{Enabled: "no"},
		})
	}
	return d.Marshal()
}

// networkXML is the XML of a transient libvirt network: a bridge of its
// own with STP off, and no forwarding (isolated: no NAT, nothing reaches
// past the hypervisor). A test network (hostAddr "") has no address, so
// libvirt runs no dnsmasq on it: no DHCP, no DNS, no frames of the
// hypervisor's on the recipes' wires. The management network (hostAddr
// the hypervisor's address on it, with its prefix: "198.19.250.1/24") has
// the address the controller reaches the guests' agents at, and still no
// DHCP or DNS: the guests' addresses are in their initramfs.
func networkXML(name string, run libvirtRun, hostAddr string) (string, error) {
	n := &libvirtxml.Network{
		Name:     name,
		Metadata: &libvirtxml.NetworkMetadata{XML: run.metadataXML()},
		Bridge:   &libvirtxml.NetworkBridge{STP: "off", Delay: "0"},
	}
	if hostAddr != "" {
		ip, prefix, ok := strings.Cut(hostAddr, "/")
		var p uint
		if _, err := fmt.Sscan(prefix, &p); !ok || err != nil {
			return "", fmt.Errorf("management address %q: want an address with its prefix", hostAddr)
		}
		n.IPs = []libvirtxml.NetworkIP{{Address: ip, Prefix: p}}
		n.DNS = &libvirtxml.NetworkDNS{Enable: "no"}
	}
	return n.Marshal()
}

// volumeXML is the XML of a raw storage volume of size bytes.
func volumeXML(name string, size uint64) (string, error) {
	v := &libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: size, Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
	}
	return v.Marshal()
}

// guestArchs lists the architectures a hypervisor's capabilities offer
// hvm guests of, and for each the domain types ("qemu", "kvm").
func guestArchs(caps string) (map[string][]string, error) {
	var c libvirtxml.Caps
	if err := c.Unmarshal(caps); err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	out := map[string][]string{}
	for _, g := range c.Guests {
		if g.OSType != "hvm" {
			continue
		}
		for _, d := range g.Arch.Domains {
			out[g.Arch.Name] = append(out[g.Arch.Name], d.Type)
		}
		if _, ok := out[g.Arch.Name]; !ok {
			out[g.Arch.Name] = nil
		}
	}
	return out, nil
}

// hostCPUs is the number of CPUs a hypervisor's capabilities list (its
// NUMA cells'), at least 1.
func hostCPUs(caps string) int {
	var c libvirtxml.Caps
	if c.Unmarshal(caps) != nil || c.Host.NUMA == nil || c.Host.NUMA.Cells == nil {
		return 1
	}
	n := 0
	for _, cell := range c.Host.NUMA.Cells.Cells {
		if cell.CPUS != nil {
			n += int(cell.CPUS.Num)
		}
	}
	return max(n, 1)
}
