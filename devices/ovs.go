package devices

import (
	"fmt"
	"strings"
)

// OvsBridge is an Open vSwitch bridge. netlink cannot create it: the agent runs "ovs-vsctl add-br
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

// Validate checks the name; one that begins with "-" is refused too
// (ovs-vsctl would read it as an option).
func (o OvsBridge) Validate() error {
	if _, err := newCheck(o.Kind(), o.Name); err != nil {
		return err
	}
	if strings.HasPrefix(o.Name, "-") {
		return fmt.Errorf("openvswitch %q: a bridge name must not begin with \"-\" (ovs-vsctl would read it as an option)", o.Name)
	}
	return nil
}
