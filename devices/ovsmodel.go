package devices

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The Open vSwitch model beyond the bridge: ports (system, internal,
// patch, vxlan/gre/geneve tunnels) with VLAN tags and trunks, bonds, and
// OpenFlow flows. Each is an OvsChange: the ovs-vsctl or ovs-ofctl
// command line that makes it and the one that takes it back, as argv (no
// shell ever reads them). lnsttest's Host.OvsAdd runs the first and
// journals the second as the change's undo on the agent.

// OvsChange is a change to Open vSwitch made by one command and undone by
// another.
type OvsChange interface {
	// Validate checks the change.
	Validate() error
	// AddArgv is the command line that makes the change.
	AddArgv() ([]string, error)
	// UndoArgv is the command line that takes it back; it succeeds also
	// when the change is already gone.
	UndoArgv() []string
	// String names the change in messages: "port vx0 (vxlan) on br0".
	String() string
}

// ovsTimeout is ovs-vsctl's --timeout in seconds, as the agent's own.
const ovsTimeout = "--timeout=10"

// ovsVsctl returns an ovs-vsctl command line with the timeout.
func ovsVsctl(args ...string) []string {
	return append([]string{"ovs-vsctl", ovsTimeout}, args...)
}

// ovsName checks an Open vSwitch name (bridge, port, interface): a device
// name that does not begin with "-" (ovs-vsctl would read it as an
// option).
func ovsName(what, field, name string) error {
	if name == "" {
		return fmt.Errorf("%s: %s is required", what, field)
	}
	if strings.HasPrefix(name, "-") {
		return fmt.Errorf("%s: %s %q begins with \"-\" (ovs-vsctl would read it as an option)", what, field, name)
	}
	if _, err := newCheck("openvswitch", name); err != nil {
		return fmt.Errorf("%s: %s: %w", what, field, err)
	}
	return nil
}

// ovsVlan checks Tag and Trunks.
func ovsVlan(what string, tag int, trunks []int) error {
	if tag < 0 || tag > 4095 {
		return fmt.Errorf("%s: Tag %d is not a VLAN id (0 for none, 1 to 4095)", what, tag)
	}
	for _, v := range trunks {
		if v < 0 || v > 4095 {
			return fmt.Errorf("%s: Trunks holds %d, not a VLAN id 0 to 4095", what, v)
		}
	}
	return nil
}

// ovsVlanArgs are the Port column settings of add-port and add-bond.
func ovsVlanArgs(tag int, trunks []int) []string {
	var a []string
	if tag != 0 {
		a = append(a, "tag="+strconv.Itoa(tag))
	}
	if len(trunks) > 0 {
		s := make([]string, len(trunks))
		for i, v := range trunks {
			s[i] = strconv.Itoa(v)
		}
		a = append(a, "trunks="+strings.Join(s, ","))
	}
	return a
}

// OvsPort is a port of an Open vSwitch bridge with one interface of the
// same name.
type OvsPort struct {
	// Bridge is the OvsBridge the port is on; Name the port's (and its
	// interface's) name.
	Bridge, Name string
	// Type is the interface type: "" (system: an existing device of the
	// host, Name), "internal" (a device Open vSwitch makes), "patch" (to
	// Peer, a patch port of another bridge), or a tunnel: "vxlan", "gre",
	// "geneve".
	Type string
	// Peer is the other patch port (Type "patch").
	Peer string
	// Remote and Local are a tunnel's options:remote_ip (required; "flow"
	// takes it from the flow's set_field) and options:local_ip ("" for
	// the routing's choice).
	Remote, Local string
	// Key is a tunnel's options:key: a number (the VNI of vxlan and
	// geneve, the GRE key), "flow" (set by the flow), or "" for none.
	Key string
	// DstPort is a tunnel's options:dst_port, 0 for the type's default.
	DstPort int
	// Tag makes the port an access port of this VLAN (0: none); Trunks
	// the VLANs a trunk port carries (empty: all).
	Tag    int
	Trunks []int
	// OfPort asks for this OpenFlow port number (ofport_request), 0 for
	// Open vSwitch's choice.
	OfPort int
	// MTU asks for this MTU of the interface (mtu_request: Open vSwitch
	// sets it, and keeps it when the bridge changes), 0 for Open
	// vSwitch's choice. The internal port of a tunnel's overlay needs
	// the underlay's MTU less the encapsulation: at 1500 over a
	// 1500-byte underlay, the IP fragments of a large datagram do not
	// fit once encapsulated and, being no DF packets, draw no
	// fragmentation-needed from the tunnel, only a drop.
	MTU int
}

// ovsTunnels are the tunnel interface types OvsPort knows.
var ovsTunnels = []string{"vxlan", "gre", "geneve"}

func (p OvsPort) what() string { return "openvswitch port " + strconv.Quote(p.Name) }

// String names the port: "port vx0 (vxlan) on br0".
func (p OvsPort) String() string {
	t := p.Type
	if t == "" {
		t = "system"
	}
	return fmt.Sprintf("port %s (%s) on %s", p.Name, t, p.Bridge)
}

// Validate checks the names, the type and the options it takes: a patch
// port has a Peer and nothing of a tunnel, a tunnel a Remote address (or
// "flow") and a Key number or "flow", and VLANs are 0 to 4095.
func (p OvsPort) Validate() error {
	w := p.what()
	if err := ovsName(w, "Bridge", p.Bridge); err != nil {
		return err
	}
	if err := ovsName(w, "Name", p.Name); err != nil {
		return err
	}
	tunnel := slices.Contains(ovsTunnels, p.Type)
	switch {
	case p.Type != "" && p.Type != "internal" && p.Type != "patch" && !tunnel:
		return fmt.Errorf("%s: Type %q is none of \"\" (system), internal, patch, vxlan, gre, geneve", w, p.Type)
	case p.Type == "patch" && p.Peer == "":
		return fmt.Errorf("%s: a patch port needs Peer", w)
	case p.Type != "patch" && p.Peer != "":
		return fmt.Errorf("%s: Peer %q is for a patch port, not %q", w, p.Peer, p.Type)
	case !tunnel && (p.Remote != "" || p.Local != "" || p.Key != "" || p.DstPort != 0):
		return fmt.Errorf("%s: Remote, Local, Key and DstPort are for tunnel ports (vxlan, gre, geneve), not %q", w, p.Type)
	case tunnel && p.Remote == "":
		return fmt.Errorf("%s: a %s tunnel needs Remote (an address, or \"flow\")", w, p.Type)
	}
	if p.Type == "patch" {
		if err := ovsName(w, "Peer", p.Peer); err != nil {
			return err
		}
	}
	if tunnel {
		if err := ovsAddrOrFlow(w, "Remote", p.Remote); err != nil {
			return err
		}
		if p.Local != "" {
			if err := ovsAddrOrFlow(w, "Local", p.Local); err != nil {
				return err
			}
		}
		if p.Key != "" && p.Key != "flow" {
			if _, err := strconv.ParseUint(p.Key, 10, 32); err != nil {
				return fmt.Errorf("%s: Key %q is neither a number nor \"flow\"", w, p.Key)
			}
		}
		if p.DstPort < 0 || p.DstPort > 65535 {
			return fmt.Errorf("%s: DstPort %d is out of range 0..65535", w, p.DstPort)
		}
	}
	if p.OfPort < 0 || p.OfPort > 65279 {
		return fmt.Errorf("%s: OfPort %d is out of range 0..65279", w, p.OfPort)
	}
	if p.MTU != 0 && (p.MTU < 68 || p.MTU > 65535) {
		return fmt.Errorf("%s: MTU %d is neither 0 (Open vSwitch's choice) nor in 68..65535", w, p.MTU)
	}
	return ovsVlan(w, p.Tag, p.Trunks)
}

// ovsAddrOrFlow checks an IP address option, or "flow".
func ovsAddrOrFlow(what, field, s string) error {
	if s == "flow" {
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return fmt.Errorf("%s: %s %q is neither an IP address nor \"flow\"", what, field, s)
	}
	return nil
}

// AddArgv is "ovs-vsctl add-port BRIDGE NAME [tag=N] [trunks=..] --
// set Interface NAME type=T options:...=... [ofport_request=N]
// [mtu_request=N]".
func (p OvsPort) AddArgv() ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	argv := ovsVsctl(append([]string{"add-port", p.Bridge, p.Name}, ovsVlanArgs(p.Tag, p.Trunks)...)...)
	var iface []string
	if p.Type != "" {
		iface = append(iface, "type="+p.Type)
	}
	if p.Peer != "" {
		iface = append(iface, "options:peer="+p.Peer)
	}
	if p.Remote != "" {
		iface = append(iface, "options:remote_ip="+p.Remote)
	}
	if p.Local != "" {
		iface = append(iface, "options:local_ip="+p.Local)
	}
	if p.Key != "" {
		iface = append(iface, "options:key="+p.Key)
	}
	if p.DstPort != 0 {
		iface = append(iface, "options:dst_port="+strconv.Itoa(p.DstPort))
	}
	if p.OfPort != 0 {
		iface = append(iface, "ofport_request="+strconv.Itoa(p.OfPort))
	}
	if p.MTU != 0 {
		iface = append(iface, "mtu_request="+strconv.Itoa(p.MTU))
	}
	if len(iface) > 0 {
		argv = append(append(argv, "--", "set", "Interface", p.Name), iface...)
	}
	return argv, nil
}

// UndoArgv is "ovs-vsctl --if-exists del-port BRIDGE NAME".
func (p OvsPort) UndoArgv() []string {
	return ovsVsctl("--if-exists", "del-port", p.Bridge, p.Name)
}

// OvsBond is a bond port of an Open vSwitch bridge over existing devices.
type OvsBond struct {
	// Bridge is the OvsBridge; Name the bond port's name.
	Bridge, Name string
	// Ifaces are the devices bonded, at least two.
	Ifaces []string
	// Mode is bond_mode: "active-backup", "balance-slb" or "balance-tcp"
	// (which needs LACP); "" leaves Open vSwitch's default
	// (active-backup).
	Mode string
	// LACP is "active", "passive" or "off" ("" leaves the default, off).
	LACP string
	// LACPFallback makes an LACP bond with no LACP partner fall back to
	// active-backup (other_config:lacp-fallback-ab) instead of carrying
	// nothing: for networks that do not carry LACPDUs (a Linux bridge
	// never forwards 01:80:c2:00:00:02).
	LACPFallback bool
	// Tag and Trunks are as for OvsPort.
	Tag    int
	Trunks []int
}

func (b OvsBond) what() string { return "openvswitch bond " + strconv.Quote(b.Name) }

// String names the bond: "bond bond0 (balance-slb) of eth0, eth1 on br0".
func (b OvsBond) String() string {
	m := b.Mode
	if m == "" {
		m = "active-backup"
	}
	if b.LACP != "" && b.LACP != "off" {
		m += ", lacp " + b.LACP
	}
	return fmt.Sprintf("bond %s (%s) of %s on %s", b.Name, m, strings.Join(b.Ifaces, ", "), b.Bridge)
}

// Validate checks the names, that there are two interfaces or more, the
// mode and LACP (balance-tcp needs it on), and the VLANs.
func (b OvsBond) Validate() error {
	w := b.what()
	if err := ovsName(w, "Bridge", b.Bridge); err != nil {
		return err
	}
	if err := ovsName(w, "Name", b.Name); err != nil {
		return err
	}
	if len(b.Ifaces) < 2 {
		return fmt.Errorf("%s: a bond needs two Ifaces or more, not %d", w, len(b.Ifaces))
	}
	for i, name := range b.Ifaces {
		if err := ovsName(w, fmt.Sprintf("Ifaces[%d]", i), name); err != nil {
			return err
		}
		if slices.Contains(b.Ifaces[:i], name) || name == b.Name {
			return fmt.Errorf("%s: Ifaces names %q twice (or as the bond)", w, name)
		}
	}
	if !slices.Contains([]string{"", "active-backup", "balance-slb", "balance-tcp"}, b.Mode) {
		return fmt.Errorf("%s: Mode %q is none of active-backup, balance-slb, balance-tcp", w, b.Mode)
	}
	if !slices.Contains([]string{"", "active", "passive", "off"}, b.LACP) {
		return fmt.Errorf("%s: LACP %q is none of active, passive, off", w, b.LACP)
	}
	if b.Mode == "balance-tcp" && (b.LACP == "" || b.LACP == "off") {
		return fmt.Errorf("%s: balance-tcp needs LACP active or passive", w)
	}
	if b.LACPFallback && (b.LACP == "" || b.LACP == "off") {
		return fmt.Errorf("%s: LACPFallback needs LACP active or passive", w)
	}
	return ovsVlan(w, b.Tag, b.Trunks)
}

// AddArgv is "ovs-vsctl add-bond BRIDGE NAME IFACE... [bond_mode=M]
// [lacp=L] [tag=N] [trunks=..] [-- set Port NAME
// other_config:lacp-fallback-ab=true]".
func (b OvsBond) AddArgv() ([]string, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	args := append([]string{"add-bond", b.Bridge, b.Name}, b.Ifaces...)
	if b.Mode != "" {
		args = append(args, "bond_mode="+b.Mode)
	}
	if b.LACP != "" {
		args = append(args, "lacp="+b.LACP)
	}
	args = append(args, ovsVlanArgs(b.Tag, b.Trunks)...)
	if b.LACPFallback {
		args = append(args, "--", "set", "Port", b.Name, "other_config:lacp-fallback-ab=true")
	}
	return ovsVsctl(args...), nil
}

// UndoArgv is "ovs-vsctl --if-exists del-port BRIDGE NAME".
func (b OvsBond) UndoArgv() []string {
	return ovsVsctl("--if-exists", "del-port", b.Bridge, b.Name)
}

// OvsFlow is an OpenFlow flow of a bridge, added with ovs-ofctl add-flow
// and deleted (exactly that one: --strict, same table, priority and
// match) at undo.
type OvsFlow struct {
	Bridge string
	// Table is the flow table, 0 to 254; Priority 0 to 65535 (0 means
	// 32768, ovs-ofctl's default, which a strict delete must repeat).
	Table, Priority int
	// Cookie marks the flow (0: none).
	Cookie uint64
	// Match is ovs-ofctl's match ("ip,nw_dst=198.18.1.2", "in_port=1"),
	// "" for every packet; Actions its actions ("output:2", "normal",
	// "drop"), required.
	Match, Actions string
}

// ovsFlowDefaultPriority is ovs-ofctl's priority of a flow that gives
// none.
const ovsFlowDefaultPriority = 32768

// String names the flow: "flow table=0,priority=100,ip actions=normal on
// br0".
func (f OvsFlow) String() string {
	return fmt.Sprintf("flow %s actions=%s on %s", f.key(), f.Actions, f.Bridge)
}

// key is the flow's table, priority and match as ovs-ofctl takes them.
func (f OvsFlow) key() string {
	p := f.Priority
	if p == 0 {
		p = ovsFlowDefaultPriority
	}
	s := fmt.Sprintf("table=%d,priority=%d", f.Table, p)
	if f.Match != "" {
		s += "," + f.Match
	}
	return s
}

// Validate checks the bridge, table and priority, and that Match and
// Actions are one flow's: non-empty actions, no "actions=" of their own,
// no white space or control characters (one argument of ovs-ofctl).
func (f OvsFlow) Validate() error {
	w := "openvswitch flow on " + strconv.Quote(f.Bridge)
	if err := ovsName(w, "Bridge", f.Bridge); err != nil {
		return err
	}
	if f.Table < 0 || f.Table > 254 {
		return fmt.Errorf("%s: Table %d is out of range 0..254", w, f.Table)
	}
	if f.Priority < 0 || f.Priority > 65535 {
		return fmt.Errorf("%s: Priority %d is out of range 0..65535", w, f.Priority)
	}
	if f.Actions == "" {
		return fmt.Errorf("%s: Actions is required (\"drop\" to drop)", w)
	}
	for field, v := range map[string]string{"Match": f.Match, "Actions": f.Actions} {
		if strings.Contains(v, "actions=") || strings.HasPrefix(v, "-") {
			return fmt.Errorf("%s: %s %q holds \"actions=\" or begins with \"-\"", w, field, v)
		}
		for _, r := range v {
			if r <= ' ' || r == 0x7f {
				return fmt.Errorf("%s: %s %q holds white space or a control character", w, field, v)
			}
		}
	}
	if strings.Contains(f.Match, "table=") || strings.Contains(f.Match, "priority=") || strings.Contains(f.Match, "cookie=") {
		return fmt.Errorf("%s: Match %q gives table, priority or cookie: use the fields", w, f.Match)
	}
	return nil
}

// AddArgv is "ovs-ofctl add-flow BRIDGE
// [cookie=C,]table=T,priority=P[,MATCH],actions=A".
func (f OvsFlow) AddArgv() ([]string, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	s := f.key() + ",actions=" + f.Actions
	if f.Cookie != 0 {
		s = fmt.Sprintf("cookie=%#x,", f.Cookie) + s
	}
	return []string{"ovs-ofctl", "add-flow", f.Bridge, s}, nil
}

// UndoArgv is "ovs-ofctl --strict del-flows BRIDGE
// table=T,priority=P[,MATCH]": that flow only (deleting none is no
// error).
func (f OvsFlow) UndoArgv() []string {
	return []string{"ovs-ofctl", "--strict", "del-flows", f.Bridge, f.key()}
}
