package devices_test

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
)

// A Bond is validated and mapped to the netlink.Link the agent passes to
// Handle.LinkAdd; index resolves device names on the host.
func Example() {
	bond := devices.Bond{Name: "bond0", Mode: "802.3ad", Miimon: 100 * time.Millisecond, LACPRate: "fast"}
	if err := bond.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	link, err := devices.NetlinkLink(bond, func(name string) (int, error) {
		return 0, fmt.Errorf("no device %q", name) // a bond has no parent to resolve
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	nb := link.(*netlink.Bond)
	fmt.Println(nb.Type(), nb.Name, nb.Mode, nb.Miimon, nb.LacpRate)

	fmt.Println(devices.Bond{Name: "bond0", Mode: "lacp"}.Validate() != nil)
	fmt.Println(devices.Bond{Name: "bond0", LACPRate: "fast"}.Validate())
	// Output:
	// bond bond0 802.3ad 100 fast
	// true
	// bond bond0 LACPRate: applies only to Mode 802.3ad, not ""
}

// Specs travel to the agent as a kind and JSON.
func ExampleMarshal() {
	kind, data, _ := devices.Marshal(devices.Vxlan{Name: "vx0", ID: 42, Remote: "198.18.0.2"})
	fmt.Println(kind)
	spec, err := devices.Unmarshal(kind, data)
	fmt.Printf("%+v %v\n", spec, err)
	// Output:
	// vxlan
	// {Name:vx0 Parent: ID:42 Remote:198.18.0.2 Local: Group: Port:0 Learning:<nil> TTL:0 Tos:0 L2miss:false L3miss:false} <nil>
}
