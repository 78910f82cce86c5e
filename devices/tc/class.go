package tc

import "math"

// Class is a class of a classful qdisc.
type Class interface {
	// Kind is the kind of the qdisc the class belongs to ("htb").
	Kind() string
	// IDs are the class's parent (its qdisc "1:" or a parent class
	// "1:1") and its id ("1:10").
	IDs() (parent, classID string)
	// Validate reports what is wrong with the spec, naming the field.
	Validate() error
}

// HtbClass is a class of an Htb qdisc: traffic in it gets Rate, and may
// borrow from its parent up to Ceil.
type HtbClass struct {
	// Parent is the qdisc ("1:") or a class of it ("1:1"); ClassID is
	// the class ("1:10"), with the qdisc's major. Both are required.
	Parent, ClassID string
	// Rate is the guaranteed rate, required; Ceil the most it may reach
	// by borrowing (0: Rate).
	Rate, Ceil Rate
	// Burst and Cburst are the bytes sent at full speed at Rate and at
	// Ceil (0: what tc picks, the rate over the timer frequency plus an
	// MTU).
	Burst, Cburst int
	// Prio orders classes borrowing spare rate, 0 (first) to 7.
	Prio int
	// Quantum is the bytes the class sends per round (0: Rate / R2Q).
	Quantum int
}

// Kind returns "htb".
func (HtbClass) Kind() string { return "htb" }

// IDs returns Parent and ClassID.
func (c HtbClass) IDs() (string, string) { return c.Parent, c.ClassID }

// Validate checks the ids, the rates, bursts, Prio and Quantum.
func (c HtbClass) Validate() error {
	ck := check{"htb class"}
	p, err := ck.handle("Parent", c.Parent, true, false)
	if err != nil {
		return err
	}
	if c.Parent == "" {
		return ck.fail("Parent", "is required (the qdisc \"1:\" or a class \"1:1\")")
	}
	id, err := ck.handle("ClassID", c.ClassID, true, true)
	if err != nil {
		return err
	}
	switch {
	case id>>16 != p>>16:
		return ck.fail("ClassID", "%q is not of the qdisc of Parent %q: give it major %x", c.ClassID, c.Parent, p>>16)
	case id == p:
		return ck.fail("ClassID", "%q is its own Parent", c.ClassID)
	case c.Rate < 8*Bit:
		return ck.fail("Rate", "%v is below 8bit (the kernel counts bytes per second); it is required", c.Rate)
	case c.Ceil != 0 && c.Ceil < c.Rate:
		return ck.fail("Ceil", "%v is below Rate %v", c.Ceil, c.Rate)
	}
	for _, f := range []struct {
		field string
		v     int
	}{{"Burst", c.Burst}, {"Cburst", c.Cburst}, {"Quantum", c.Quantum}} {
		if err := ck.nonNegative(f.field, f.v, math.MaxUint32); err != nil {
			return err
		}
	}
	return ck.nonNegative("Prio", c.Prio, 7)
}
