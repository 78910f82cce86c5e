// Package devices is the lnst-go device model: one Spec type per link kind
// that a recipe can create on a host (Host.Create), and Info, what a host
// reports about a device.
//
// Each Spec is a plain struct with the kind's options as typed fields
// (Bridge, Bond, Vlan, Vxlan, Macvlan, ...). Validate checks a spec and names
// the kind, device and field in its error ([ValidationError]). The agent turns
// a spec into the link that netlink's LinkAdd creates (the package itself
// does not link netlink, so the controller side need not); a few options
// netlink cannot set at creation are written to sysfs afterwards. Kinds
// netlink cannot create (Team, OvsBridge) are made by their own tools
// (teamd, ovs-vsctl).
//
// Specs travel to the agent as a kind and JSON ([Marshal], [Unmarshal]);
// [Kinds] lists every kind the package models.
//
// Durations are time.Duration and converted to the units the kernel wants
// (milliseconds for bond timers, centiseconds for bridge timers). Addresses
// are strings parsed with net/netip; Parent names a device on the same host.
package devices
