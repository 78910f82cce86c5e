package tc

import (
	"encoding/json"
	"fmt"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/devices/internal/specwire"
)

// Action is what a filter does with a packet it matches.
type Action interface {
	// Kind is the kernel's name of the action ("gact", "mirred").
	Kind() string
	// Validate reports what is wrong with the spec, naming the field.
	Validate() error
}

// Verdicts an action ends with, as tc names them.
var verdicts = []string{"ok", "pass", "drop", "reclassify", "pipe", "continue", "stolen"}

// Gact is the generic action: a verdict on the packet.
type Gact struct {
	// Verdict is "drop", "pass" (or "ok"), "reclassify", "pipe",
	// "continue" or "stolen"; required.
	Verdict string
}

// Kind returns "gact".
func (Gact) Kind() string { return "gact" }

// Validate checks Verdict.
func (a Gact) Validate() error {
	return check{a.Kind()}.oneOf("Verdict", a.Verdict, verdicts...)
}

// Mirred sends the packet, or a copy of it, to another device: to be sent
// there (egress) or as if received there (Ingress). A redirect ends the
// packet's path here; a mirror lets it go on.
type Mirred struct {
	// Dev is the device, by its real name on the host; required.
	Dev string
	// Mirror sends a copy; otherwise the packet is redirected.
	Mirror bool
	// Ingress delivers to Dev's receive path instead of its send path.
	Ingress bool
}

// Kind returns "mirred".
func (Mirred) Kind() string { return "mirred" }

// Validate checks Dev.
func (a Mirred) Validate() error {
	if err := devices.CheckName(a.Dev); err != nil {
		return check{a.Kind()}.fail("Dev", "%w", err)
	}
	return nil
}

// Police limits the rate of what matches: traffic above Rate (with bursts
// of Burst bytes) gets the Exceed verdict, the rest Conform.
type Police struct {
	// Rate and Burst (bytes) are required.
	Rate  Rate
	Burst int
	// MTU is the largest packet that can conform (0: any up to 2 KiB,
	// the kernel's default).
	MTU int
	// Exceed is the verdict on traffic over the rate: "drop" (the
	// default), "pass", "reclassify", "pipe" or "continue"; Conform on the
	// rest, "pass" by default.
	Exceed, Conform string
}

// Kind returns "police".
func (Police) Kind() string { return "police" }

// Validate checks the rate, the sizes and the verdicts.
func (a Police) Validate() error {
	c := check{a.Kind()}
	switch {
	case a.Rate < 8*Bit || a.Rate > maxBytesRate:
		return c.fail("Rate", "%v is out of range 8bit..%v; it is required", a.Rate, maxBytesRate)
	case a.Burst <= 0 || int64(a.Burst) > 1<<32-1:
		return c.fail("Burst", "%d is out of range 1..%d bytes; it is required", a.Burst, uint32(1<<32-1))
	}
	if err := c.nonNegative("MTU", a.MTU, 1<<32-1); err != nil {
		return err
	}
	pol := []string{"", "drop", "pass", "ok", "reclassify", "pipe", "continue"}
	if err := c.oneOf("Exceed", a.Exceed, pol...); err != nil {
		return err
	}
	return c.oneOf("Conform", a.Conform, pol...)
}

// SkbEdit sets fields of the packet's metadata; at least one is required.
type SkbEdit struct {
	// Mark sets the firewall mark; Mask, if set, only the bits in it.
	Mark, Mask *uint32
	// Priority sets the packet's priority, a class id ("1:10").
	Priority string
	// QueueMapping sets the transmit queue.
	QueueMapping *int
}

// Kind returns "skbedit".
func (SkbEdit) Kind() string { return "skbedit" }

// Validate checks that something is set, and Priority and QueueMapping.
func (a SkbEdit) Validate() error {
	c := check{a.Kind()}
	if a.Mark == nil && a.Priority == "" && a.QueueMapping == nil {
		return c.fail("", "sets nothing: give Mark, Priority or QueueMapping")
	}
	if a.Mask != nil && a.Mark == nil {
		return c.fail("Mask", "is given without Mark")
	}
	if a.Priority != "" {
		if _, err := ParseHandle(a.Priority); err != nil {
			return c.fail("Priority", "%w", err)
		}
	}
	if a.QueueMapping != nil {
		return c.nonNegative("QueueMapping", *a.QueueMapping, 0xffff)
	}
	return nil
}

// ActionList is a filter's actions, run in order. Its JSON names each
// action's kind, so that it can be decoded.
type ActionList []Action

// checkActions validates each action of a filter of kind.
func checkActions(kind string, as ActionList) error {
	for i, a := range as {
		if a == nil {
			return check{kind}.fail(fmt.Sprintf("Actions[%d]", i), "is nil")
		}
		if err := a.Validate(); err != nil {
			return check{kind}.fail(fmt.Sprintf("Actions[%d]", i), "%w", err)
		}
	}
	return nil
}

type wireAction struct {
	Kind string
	Spec json.RawMessage
}

// MarshalJSON writes each action as its kind and its fields.
func (l ActionList) MarshalJSON() ([]byte, error) {
	out := make([]wireAction, 0, len(l))
	for i, a := range l {
		if a == nil {
			return nil, fmt.Errorf("action %d is nil", i)
		}
		kind, data, err := actionKinds.Marshal(a)
		if err != nil {
			return nil, err
		}
		out = append(out, wireAction{Kind: kind, Spec: data})
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (l *ActionList) UnmarshalJSON(data []byte) error {
	var in []wireAction
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*l = nil
	for i, w := range in {
		a, err := specwire.Unmarshal[Action](actionKinds, w.Kind, w.Spec)
		if err != nil {
			return fmt.Errorf("action %d: %w", i, err)
		}
		*l = append(*l, a)
	}
	return nil
}
