// Package tc is the lnst-go model of Linux traffic control: one spec type
// per qdisc kind (Tbf, Htb, Netem, Fq, FqCodel, Prio, Ingress, Clsact),
// HtbClass, one per classifier (U32, Flower, MatchAll) and one per action
// (Gact, Mirred, Police, SkbEdit). A recipe adds them to a device with
// lnsttest's Device.AddQdisc, AddClass and AddFilter; the agent turns them
// into netlink messages (the package itself does not link netlink).
//
// Each spec is a plain struct. Validate checks it and names the kind and
// field in its error ([ValidationError]). Handles are written as tc writes
// them: "1:" for a qdisc, "1:10" for a class, "root", "ingress" and, under
// a clsact qdisc, "ingress" and "egress" for a filter's Parent. Rates are
// [Rate], bits per second as tc counts them (8*Mbit is 8 Mbit/s); sizes are
// bytes; durations are time.Duration, converted to the kernel's units.
//
// Specs travel to the agent as a kind and JSON ([MarshalQdisc],
// [UnmarshalQdisc], and the same for classes and filters).
package tc
