package devices

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// OvsBridge is an Open vSwitch bridge. netlink cannot create it
// (NetlinkLink returns ErrNotNetlink): the agent runs "ovs-vsctl add-br
// NAME" to make it and "ovs-vsctl del-br NAME" to remove it; ovs-vswitchd
// must be running.
type OvsBridge struct {
	Name string
}

// LinkName returns the bridge's name.
func (o OvsBridge) LinkName() string { return o.Name }

// Kind returns "openvswitch", the kernel's name of the kind of the
// bridge's internal device.
func (OvsBridge) Kind() string { return "openvswitch" }

// Validate checks the name.
func (o OvsBridge) Validate() error {
	_, err := newCheck(o.Kind(), o.Name)
	return err
}

func (o OvsBridge) netlinkLink(resolver) (netlink.Link, error) {
	return nil, fmt.Errorf("openvswitch %s: %w (run ovs-vsctl add-br)", o.Name, ErrNotNetlink)
}
