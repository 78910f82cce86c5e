package devices_test

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/devices"
)

// A Bond is validated before it travels to the agent; the error names the
// kind, the device and the field.
func Example() {
	bond := devices.Bond{Name: "bond0", Mode: "802.3ad", Miimon: 100 * time.Millisecond, LACPRate: "fast"}
	fmt.Println(bond.Kind(), bond.LinkName(), bond.Validate())

	fmt.Println(devices.Bond{Name: "bond0", Mode: "lacp"}.Validate() != nil)
	fmt.Println(devices.Bond{Name: "bond0", LACPRate: "fast"}.Validate())
	// Output:
	// bond bond0 <nil>
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
	// {Name:vx0 Parent: ID:42 Remote:198.18.0.2 Local: Group: Port:0 Learning:<nil> TTL:0 Tos:0 L2miss:false L3miss:false External:false GPE:false} <nil>
}
