// Package sriov builds and reads the kernel messages of SR-IOV and
// switchdev: per-VF settings as rtnetlink VF attributes (IFLA_VFINFO_LIST,
// what `ip link set DEV vf N ...` sends), a device's eswitch mode and its
// ports through the devlink generic netlink family (what `devlink dev
// eswitch` and `devlink port` send), and the VF count through sysfs
// (sriov_numvfs). Message builders and parsers are pure functions, tested
// without a device; the calls that send them run in the calling thread's
// network namespace.
package sriov

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Link states of a VF (IFLA_VF_LINK_STATE_*), by the names ip link takes.
var linkStates = []string{"auto", "enable", "disable"}

// VFChange is what SetVF changes on one VF; nil fields stay.
type VFChange struct {
	MAC net.HardwareAddr
	// Vlan (0 none) and its priority Qos.
	Vlan, Qos *uint32
	// MinRate and MaxRate in Mb/s (0: no limit); both are sent together.
	MinRate, MaxRate *uint32
	Spoofchk, Trust  *bool
	// LinkState is "auto", "enable" or "disable".
	LinkState string
}

// VF is one VF as the kernel reports it.
type VF struct {
	Index            int
	MAC              net.HardwareAddr
	Vlan, Qos        uint32
	MinRate, MaxRate uint32
	Spoofchk, Trust  bool
	LinkState        string
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint32(b, v)
	}
	return b
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// vfInfo is the IFLA_VF_INFO attribute of c on VF vf.
func vfInfo(vf uint32, c VFChange) (*nl.RtAttr, error) {
	info := nl.NewRtAttr(unix.IFLA_VF_INFO, nil)
	n := 0
	if c.MAC != nil {
		if len(c.MAC) > 32 {
			return nil, fmt.Errorf("VF %d: MAC %s is longer than 32 bytes", vf, c.MAC)
		}
		mac := make([]byte, 32)
		copy(mac, c.MAC)
		info.AddRtAttr(unix.IFLA_VF_MAC, append(u32s(vf), mac...))
		n++
	}
	if c.Vlan != nil || c.Qos != nil {
		var vlan, qos uint32
		if c.Vlan != nil {
			vlan = *c.Vlan
		}
		if c.Qos != nil {
			qos = *c.Qos
		}
		if vlan > 4095 || qos > 7 {
			return nil, fmt.Errorf("VF %d: vlan %d qos %d: want vlan 0-4095, qos 0-7", vf, vlan, qos)
		}
		info.AddRtAttr(unix.IFLA_VF_VLAN, u32s(vf, vlan, qos))
		n++
	}
	if c.MinRate != nil || c.MaxRate != nil {
		var lo, hi uint32
		if c.MinRate != nil {
			lo = *c.MinRate
		}
		if c.MaxRate != nil {
			hi = *c.MaxRate
		}
		if hi != 0 && lo > hi {
			return nil, fmt.Errorf("VF %d: min rate %d above max rate %d", vf, lo, hi)
		}
		info.AddRtAttr(unix.IFLA_VF_RATE, u32s(vf, lo, hi))
		n++
	}
	if c.Spoofchk != nil {
		info.AddRtAttr(unix.IFLA_VF_SPOOFCHK, u32s(vf, b2u(*c.Spoofchk)))
		n++
	}
	if c.Trust != nil {
		info.AddRtAttr(unix.IFLA_VF_TRUST, u32s(vf, b2u(*c.Trust)))
		n++
	}
	if c.LinkState != "" {
		i := indexOf(linkStates, c.LinkState)
		if i < 0 {
			return nil, fmt.Errorf("VF %d: link state %q is none of %s", vf, c.LinkState, strings.Join(linkStates, ", "))
		}
		info.AddRtAttr(unix.IFLA_VF_LINK_STATE, u32s(vf, uint32(i)))
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("VF %d: nothing to change", vf)
	}
	return info, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// setVFMsg is the payload (ifinfomsg and attributes) of the RTM_SETLINK
// that changes VF vf of the device with index ifindex.
func setVFMsg(ifindex int, vf uint32, c VFChange) ([]byte, error) {
	info, err := vfInfo(vf, c)
	if err != nil {
		return nil, err
	}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(ifindex)
	list := nl.NewRtAttr(unix.IFLA_VFINFO_LIST, nil)
	list.AddChild(info)
	return append(msg.Serialize(), list.Serialize()...), nil
}

// rawData is a request payload made here.
type rawData []byte

func (r rawData) Len() int          { return len(r) }
func (r rawData) Serialize() []byte { return r }

// SetVF changes VF vf of the device with index ifindex, in the calling
// thread's network namespace. numVFs is how many VFs the device has: a
// VF index at or above it fails naming the device and the count.
func SetVF(name string, ifindex int, numVFs int, vf int, c VFChange) error {
	if vf < 0 || vf >= numVFs {
		return fmt.Errorf("VF %d of %s: the device has %d VFs (0 to %d)", vf, name, numVFs, numVFs-1)
	}
	b, err := setVFMsg(ifindex, uint32(vf), c)
	if err != nil {
		return fmt.Errorf("set VF %d of %s: %w", vf, name, err)
	}
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	req.AddData(rawData(b))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("set VF %d of %s: not supported by its driver: %w", vf, name, err)
		}
		return fmt.Errorf("set VF %d of %s: %w", vf, name, err)
	}
	return nil
}

// Undo is the VFChange that sets back what c changes on a VF that was
// old.
func Undo(old VF, c VFChange) VFChange {
	var u VFChange
	if c.MAC != nil {
		u.MAC = old.MAC
	}
	if c.Vlan != nil || c.Qos != nil {
		u.Vlan, u.Qos = &old.Vlan, &old.Qos
	}
	if c.MinRate != nil || c.MaxRate != nil {
		u.MinRate, u.MaxRate = &old.MinRate, &old.MaxRate
	}
	if c.Spoofchk != nil {
		u.Spoofchk = &old.Spoofchk
	}
	if c.Trust != nil {
		u.Trust = &old.Trust
	}
	if c.LinkState != "" {
		u.LinkState = old.LinkState
	}
	return u
}

// LinkStateName names a VF link state as ip link does.
func LinkStateName(s uint32) string {
	if int(s) < len(linkStates) {
		return linkStates[s]
	}
	return "state-" + strconv.FormatUint(uint64(s), 10)
}

// NumVFs reads a device's VF count and the most it may have, from its
// bus device's sriov_numvfs and sriov_totalvfs under devDir
// (/sys/class/net/<name>/device). A device without SR-IOV fails with an
// error that wraps unix.EOPNOTSUPP.
func NumVFs(name, devDir string) (num, total int, err error) {
	read := func(f string) (int, error) {
		b, err := os.ReadFile(filepath.Join(devDir, f))
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%s has no SR-IOV (no %s): %w", name, filepath.Join(devDir, f), unix.EOPNOTSUPP)
		}
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("%s of %s: %w", f, name, err)
		}
		return n, nil
	}
	if num, err = read("sriov_numvfs"); err != nil {
		return 0, 0, err
	}
	if total, err = read("sriov_totalvfs"); err != nil {
		return 0, 0, err
	}
	return num, total, nil
}

// SetNumVFs sets a device's VF count and returns the count it had. The
// kernel takes a new count only from 0, so a change from one count to
// another writes 0 first; SetNumVFs(name, devDir, old) takes it back
// (0 removes every VF). A count above sriov_totalvfs fails naming the
// device and the limit, before anything is written.
func SetNumVFs(name, devDir string, want int) (old int, err error) {
	old, total, err := NumVFs(name, devDir)
	if err != nil {
		return 0, err
	}
	if want < 0 || want > total {
		return 0, fmt.Errorf("set VFs of %s: %d is above the device's sriov_totalvfs %d", name, want, total)
	}
	if want == old {
		return old, nil
	}
	p := filepath.Join(devDir, "sriov_numvfs")
	if old != 0 && want != 0 {
		if err := writeValue(p, "0"); err != nil {
			return 0, fmt.Errorf("set VFs of %s: remove its %d VFs first: %w", name, old, err)
		}
	}
	if err := writeValue(p, strconv.Itoa(want)); err != nil {
		return 0, fmt.Errorf("set VFs of %s to %d: %w", name, want, err)
	}
	return old, nil
}

func writeValue(p, v string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// FromLink reads the VFs of a link as the netlink library parsed them
// from the kernel's IFLA_VFINFO_LIST.
func FromLink(l netlink.Link) []VF {
	var vfs []VF
	for _, v := range l.Attrs().Vfs {
		vfs = append(vfs, VF{Index: v.ID, MAC: v.Mac, Vlan: uint32(v.Vlan), Qos: uint32(v.Qos), MinRate: v.MinTxRate, MaxRate: v.MaxTxRate,
			Spoofchk: v.Spoofchk, Trust: v.Trust != 0, LinkState: LinkStateName(v.LinkState)})
	}
	return vfs
}

// VFNetdev is the network device of VF vf of the PF whose bus device is
// devDir (its virtfn<vf>/net/<name>), "" when it has none.
func VFNetdev(devDir string, vf int) string {
	ents, err := os.ReadDir(filepath.Join(devDir, "virtfn"+strconv.Itoa(vf), "net"))
	if err != nil || len(ents) == 0 {
		return ""
	}
	return ents[0].Name()
}
