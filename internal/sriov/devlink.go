package sriov

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Eswitch modes, by the names devlink takes (DEVLINK_ESWITCH_MODE_*).
var eswitchModes = []string{"legacy", "switchdev"}

// Port flavours (DEVLINK_PORT_FLAVOUR_*), by the names devlink shows.
var portFlavours = []string{"physical", "cpu", "dsa", "pcipf", "pcivf", "virtual", "unused", "pcisf"}

// Handle names a devlink device: its bus ("pci") and device
// ("0000:03:00.0").
type Handle struct{ Bus, Dev string }

func (h Handle) String() string { return h.Bus + "/" + h.Dev }

// HandleOf finds the devlink handle of network device name from sysfs
// (/sys/class/net/<name>/device and its subsystem), in the calling
// thread's mount namespace.
func HandleOf(name string) (Handle, error) {
	dev := filepath.Join("/sys/class/net", name, "device")
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return Handle{}, fmt.Errorf("devlink handle of %s: it has no bus device: %w", name, err)
	}
	sub, err := os.Readlink(filepath.Join(dev, "subsystem"))
	if err != nil {
		return Handle{}, fmt.Errorf("devlink handle of %s: %w", name, err)
	}
	return Handle{Bus: filepath.Base(sub), Dev: filepath.Base(real)}, nil
}

// Port is a devlink port: a physical port, a PF, or a VF's representor.
type Port struct {
	Handle
	Index   uint32
	Netdev  string // the port's netdev: a representor for a VF port
	Flavour string // "physical", "pcipf", "pcivf", ...
	VF      int    // the VF number of a "pcivf" port, -1 otherwise
}

func genlMsg(cmd uint8, attrs ...*nl.RtAttr) []byte {
	b := []byte{cmd, unix.DEVLINK_GENL_VERSION, 0, 0}
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func handleAttrs(h Handle) []*nl.RtAttr {
	return []*nl.RtAttr{
		nl.NewRtAttr(unix.DEVLINK_ATTR_BUS_NAME, nl.ZeroTerminated(h.Bus)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_DEV_NAME, nl.ZeroTerminated(h.Dev)),
	}
}

// eswitchGetMsg is the payload of DEVLINK_CMD_ESWITCH_GET for h.
func eswitchGetMsg(h Handle) []byte {
	return genlMsg(unix.DEVLINK_CMD_ESWITCH_GET, handleAttrs(h)...)
}

// eswitchSetMsg is the payload of DEVLINK_CMD_ESWITCH_SET of mode on h.
func eswitchSetMsg(h Handle, mode string) ([]byte, error) {
	m := indexOf(eswitchModes, mode)
	if m < 0 {
		return nil, fmt.Errorf("eswitch mode %q is none of %s", mode, strings.Join(eswitchModes, ", "))
	}
	attrs := append(handleAttrs(h), nl.NewRtAttr(unix.DEVLINK_ATTR_ESWITCH_MODE, nl.Uint16Attr(uint16(m))))
	return genlMsg(unix.DEVLINK_CMD_ESWITCH_SET, attrs...), nil
}

// attrs splits a genetlink payload after its header into attributes.
func attrs(b []byte) (map[uint16][]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("devlink reply of %d bytes is short of its header", len(b))
	}
	out := map[uint16][]byte{}
	for b = b[4:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("devlink reply: %d bytes left, short of an attribute", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < 4 || n > len(b) {
			return nil, fmt.Errorf("devlink reply: attribute %d has length %d of %d bytes left", typ, n, len(b))
		}
		out[typ] = b[4:n]
		b = b[min((n+3)&^3, len(b)):]
	}
	return out, nil
}

func str(v []byte) string { return strings.TrimRight(string(v), "\x00") }

// parseEswitch reads a DEVLINK_CMD_ESWITCH_GET reply: the mode.
func parseEswitch(b []byte) (string, error) {
	a, err := attrs(b)
	if err != nil {
		return "", err
	}
	v, ok := a[unix.DEVLINK_ATTR_ESWITCH_MODE]
	if !ok || len(v) != 2 {
		return "", errors.New("devlink eswitch reply has no mode")
	}
	m := binary.NativeEndian.Uint16(v)
	if int(m) < len(eswitchModes) {
		return eswitchModes[m], nil
	}
	return fmt.Sprintf("mode-%d", m), nil
}

// parsePort reads one DEVLINK_CMD_PORT_GET reply (or dump message).
func parsePort(b []byte) (Port, error) {
	a, err := attrs(b)
	if err != nil {
		return Port{}, err
	}
	p := Port{Handle: Handle{Bus: str(a[unix.DEVLINK_ATTR_BUS_NAME]), Dev: str(a[unix.DEVLINK_ATTR_DEV_NAME])}, Netdev: str(a[unix.DEVLINK_ATTR_PORT_NETDEV_NAME]), VF: -1}
	if v := a[unix.DEVLINK_ATTR_PORT_INDEX]; len(v) == 4 {
		p.Index = binary.NativeEndian.Uint32(v)
	} else {
		return Port{}, errors.New("devlink port reply has no port index")
	}
	if v := a[unix.DEVLINK_ATTR_PORT_FLAVOUR]; len(v) == 2 {
		f := binary.NativeEndian.Uint16(v)
		if int(f) < len(portFlavours) {
			p.Flavour = portFlavours[f]
		} else {
			p.Flavour = fmt.Sprintf("flavour-%d", f)
		}
	}
	if v := a[unix.DEVLINK_ATTR_PORT_PCI_VF_NUMBER]; len(v) == 2 && p.Flavour == "pcivf" {
		p.VF = int(binary.NativeEndian.Uint16(v))
	}
	return p, nil
}

// family is the devlink generic netlink family's id.
func family() (uint16, error) {
	f, err := netlink.GenlFamilyGet(unix.DEVLINK_GENL_NAME)
	if err != nil {
		return 0, fmt.Errorf("find the devlink netlink family: %w", err)
	}
	return f.ID, nil
}

func devlinkRequest(flags int, payload []byte) ([][]byte, error) {
	id, err := family()
	if err != nil {
		return nil, err
	}
	req := nl.NewNetlinkRequest(int(id), unix.NLM_F_REQUEST|flags)
	req.AddData(rawData(payload))
	return req.Execute(unix.NETLINK_GENERIC, 0)
}

// Eswitch reads the eswitch mode of devlink device h.
func Eswitch(h Handle) (string, error) {
	msgs, err := devlinkRequest(0, eswitchGetMsg(h))
	if err != nil {
		return "", fmt.Errorf("read eswitch mode of %s: %w", h, err)
	}
	if len(msgs) != 1 {
		return "", fmt.Errorf("read eswitch mode of %s: %d replies, want 1", h, len(msgs))
	}
	return parseEswitch(msgs[0])
}

// SetEswitch sets the eswitch mode of devlink device h and returns the
// mode it had.
func SetEswitch(h Handle, mode string) (old string, err error) {
	b, err := eswitchSetMsg(h, mode)
	if err != nil {
		return "", fmt.Errorf("set eswitch mode of %s: %w", h, err)
	}
	if old, err = Eswitch(h); err != nil {
		return "", err
	}
	if old == mode {
		return old, nil
	}
	if _, err := devlinkRequest(unix.NLM_F_ACK, b); err != nil {
		return "", fmt.Errorf("set eswitch mode of %s to %s: %w", h, mode, err)
	}
	return old, nil
}

// Ports lists the devlink ports of device h (every port, with h zero).
func Ports(h Handle) ([]Port, error) {
	msgs, err := devlinkRequest(unix.NLM_F_DUMP, genlMsg(unix.DEVLINK_CMD_PORT_GET))
	if err != nil {
		return nil, fmt.Errorf("list devlink ports: %w", err)
	}
	var ports []Port
	for _, m := range msgs {
		p, err := parsePort(m)
		if err != nil {
			return nil, fmt.Errorf("list devlink ports: %w", err)
		}
		if h == (Handle{}) || p.Handle == h {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// Representor finds the representor netdev of VF vf of device h among
// its ports.
func Representor(ports []Port, vf int) (string, error) {
	for _, p := range ports {
		if p.Flavour == "pcivf" && p.VF == vf && p.Netdev != "" {
			return p.Netdev, nil
		}
	}
	return "", fmt.Errorf("no devlink port is the representor of VF %d (is the eswitch in switchdev mode?)", vf)
}
