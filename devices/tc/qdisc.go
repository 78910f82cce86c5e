package tc

import (
	"math"
	"time"
)

// Qdisc is a queueing discipline to put on a device.
type Qdisc interface {
	// Kind is the kernel's name of the qdisc ("tbf", "htb").
	Kind() string
	// Place is where the qdisc goes: its parent ("root", a class "1:10",
	// "ingress") and its handle ("1:"; "" lets the kernel pick).
	Place() (parent, handle string)
	// Validate reports what is wrong with the spec, naming the field.
	Validate() error
}

// placeOf gives the defaults of a classic qdisc's Parent ("root").
func placeOf(parent, handle string) (string, string) {
	if parent == "" {
		parent = "root"
	}
	return parent, handle
}

// checkPlace checks Parent and Handle of a classic (egress) qdisc. Handles
// with major 8000 and above are the kernel's: the undo of a change tells a
// qdisc the kernel made by them.
func checkPlace(c check, parent, handle string) error {
	if err := c.parent(parent); err != nil {
		return err
	}
	h, err := c.handle("Handle", handle, false, false)
	if err != nil {
		return err
	}
	if h>>16 >= 0x8000 {
		return c.fail("Handle", "%q: majors 8000 and above are the ones the kernel picks; give a smaller one", handle)
	}
	if parent != "" && parent != "root" {
		p, _ := ParseHandle(parent)
		if h != 0 && p>>16 == h>>16 {
			return c.fail("Handle", "%q has the major of its parent %q", handle, parent)
		}
	}
	return nil
}

// maxMicros is the longest duration a uint32 of microseconds holds.
const maxMicros = time.Duration(math.MaxUint32) * time.Microsecond

// Tbf is a token bucket filter: it shapes everything through the device
// to Rate, with bursts up to Burst bytes.
type Tbf struct {
	Parent, Handle string
	// Rate is the shaping rate, required.
	Rate Rate
	// Burst is the bucket size in bytes, required (at least the MTU for
	// full-size packets to pass).
	Burst int
	// Limit is how many bytes may wait for tokens; Latency says it as the
	// longest time a packet may wait instead. One of them is required.
	Limit   int
	Latency time.Duration
	// Peakrate and Minburst shape bursts to Peakrate with a second bucket
	// of Minburst bytes (both or neither).
	Peakrate Rate
	Minburst int
}

// Kind returns "tbf".
func (Tbf) Kind() string { return "tbf" }

// Place returns Parent ("root" if empty) and Handle.
func (q Tbf) Place() (string, string) { return placeOf(q.Parent, q.Handle) }

// Validate checks the place, the rates and sizes.
func (q Tbf) Validate() error {
	c := check{q.Kind()}
	if err := checkPlace(c, q.Parent, q.Handle); err != nil {
		return err
	}
	switch {
	case q.Rate < 8*Bit:
		return c.fail("Rate", "%v is below 8bit (the kernel counts bytes per second); it is required", q.Rate)
	case q.Burst <= 0 || q.Burst > math.MaxUint32:
		return c.fail("Burst", "%d is out of range 1..%d bytes; it is required", q.Burst, uint32(math.MaxUint32))
	case q.Limit == 0 && q.Latency == 0:
		return c.fail("Limit", "is required (or give Latency)")
	case q.Limit != 0 && q.Latency != 0:
		return c.fail("Latency", "%v is given with Limit %d; give one of them", q.Latency, q.Limit)
	}
	if err := c.nonNegative("Limit", q.Limit, math.MaxUint32); err != nil {
		return err
	}
	if err := c.duration("Latency", q.Latency, time.Microsecond, maxMicros); err != nil {
		return err
	}
	if (q.Peakrate == 0) != (q.Minburst == 0) {
		return c.fail("Peakrate", "Peakrate %v and Minburst %d go together: give both or neither", q.Peakrate, q.Minburst)
	}
	if q.Peakrate != 0 && q.Peakrate <= q.Rate {
		return c.fail("Peakrate", "%v is not above Rate %v", q.Peakrate, q.Rate)
	}
	return c.nonNegative("Minburst", q.Minburst, math.MaxUint32)
}

// Htb is a hierarchy token bucket: traffic is shaped by the HtbClass its
// filters put it in.
type Htb struct {
	Parent, Handle string
	// Default is the class unclassified traffic goes to ("1:10"; its major
	// must be the qdisc's); "" sends it unshaped, straight to the device.
	Default string
	// R2Q divides a class's rate into its quantum (kernel default 10).
	R2Q int
	// DirectQlen is the queue length of unclassified traffic when Default
	// is ""; nil leaves the device's transmit queue length.
	DirectQlen *int
}

// Kind returns "htb".
func (Htb) Kind() string { return "htb" }

// Place returns Parent ("root" if empty) and Handle.
func (q Htb) Place() (string, string) { return placeOf(q.Parent, q.Handle) }

// Validate checks the place, Default, R2Q and DirectQlen.
func (q Htb) Validate() error {
	c := check{q.Kind()}
	if err := checkPlace(c, q.Parent, q.Handle); err != nil {
		return err
	}
	d, err := c.handle("Default", q.Default, true, false)
	if err != nil {
		return err
	}
	if d != 0 {
		if d&0xffff == 0 {
			return c.fail("Default", "%q names a qdisc, not a class (\"1:10\")", q.Default)
		}
		if h, _ := ParseHandle(q.Handle); q.Handle == "" || h>>16 != d>>16 {
			return c.fail("Default", "%q is not a class of this qdisc: give Handle with the same major (%q)", q.Default, FormatHandle(d&0xffff0000))
		}
	}
	if err := c.nonNegative("R2Q", q.R2Q, math.MaxUint32); err != nil {
		return err
	}
	if q.DirectQlen != nil {
		return c.nonNegative("DirectQlen", *q.DirectQlen, math.MaxUint32)
	}
	return nil
}

// Netem emulates a wide area network: delay, jitter, loss, duplication,
// reordering, corruption and a rate limit. Percentages are 0..100.
type Netem struct {
	Parent, Handle string
	// Delay is added to every packet, Jitter varies it (uniformly, by up
	// to Jitter either way); DelayCorr correlates successive delays (%).
	Delay, Jitter time.Duration
	DelayCorr     float64
	// Loss drops that share of packets, LossCorr correlates successive
	// drops.
	Loss, LossCorr float64
	// Duplicate sends that share of packets twice.
	Duplicate, DuplicateCorr float64
	// Reorder sends that share of packets at once, ahead of delayed ones
	// (needs Delay); Gap reorders every Gap-th packet instead.
	Reorder, ReorderCorr float64
	Gap                  int
	// Corrupt flips a random bit in that share of packets.
	Corrupt, CorruptCorr float64
	// Rate limits the send rate (0: none).
	Rate Rate
	// Limit is the queue length in packets (kernel default 1000).
	Limit int
}

// Kind returns "netem".
func (Netem) Kind() string { return "netem" }

// Place returns Parent ("root" if empty) and Handle.
func (q Netem) Place() (string, string) { return placeOf(q.Parent, q.Handle) }

// Validate checks the place, the delays and every percentage.
func (q Netem) Validate() error {
	c := check{q.Kind()}
	if err := checkPlace(c, q.Parent, q.Handle); err != nil {
		return err
	}
	if err := c.duration("Delay", q.Delay, time.Microsecond, maxMicros); err != nil {
		return err
	}
	if err := c.duration("Jitter", q.Jitter, time.Microsecond, maxMicros); err != nil {
		return err
	}
	for _, p := range []struct {
		field string
		v     float64
	}{
		{"DelayCorr", q.DelayCorr}, {"Loss", q.Loss}, {"LossCorr", q.LossCorr},
		{"Duplicate", q.Duplicate}, {"DuplicateCorr", q.DuplicateCorr},
		{"Reorder", q.Reorder}, {"ReorderCorr", q.ReorderCorr},
		{"Corrupt", q.Corrupt}, {"CorruptCorr", q.CorruptCorr},
	} {
		if err := c.percent(p.field, p.v); err != nil {
			return err
		}
	}
	switch {
	case q.Jitter != 0 && q.Delay == 0:
		return c.fail("Jitter", "%v needs a Delay to vary", q.Jitter)
	case (q.Reorder != 0 || q.Gap != 0) && q.Delay == 0:
		return c.fail("Reorder", "reordering needs a Delay: packets are sent ahead of delayed ones")
	case q.Rate != 0 && q.Rate < 8*Bit:
		return c.fail("Rate", "%v is below 8bit (the kernel counts bytes per second)", q.Rate)
	}
	if err := c.nonNegative("Gap", q.Gap, math.MaxUint32); err != nil {
		return err
	}
	return c.nonNegative("Limit", q.Limit, math.MaxUint32)
}

// Fq is fair queueing with per-flow pacing.
type Fq struct {
	Parent, Handle string
	// Limit and FlowLimit are the packets the qdisc and one flow may hold
	// (kernel defaults 10000 and 100).
	Limit, FlowLimit int
	// Quantum and InitialQuantum are the bytes a flow may send per round
	// and in its first round.
	Quantum, InitialQuantum int
	// MaxRate caps each flow's rate (0: none).
	MaxRate Rate
	// NoPacing turns pacing off (it is on by default).
	NoPacing bool
}

// Kind returns "fq".
func (Fq) Kind() string { return "fq" }

// Place returns Parent ("root" if empty) and Handle.
func (q Fq) Place() (string, string) { return placeOf(q.Parent, q.Handle) }

// Validate checks the place, the limits and MaxRate.
func (q Fq) Validate() error {
	c := check{q.Kind()}
	if err := checkPlace(c, q.Parent, q.Handle); err != nil {
		return err
	}
	for _, f := range []struct {
		field string
		v     int
	}{{"Limit", q.Limit}, {"FlowLimit", q.FlowLimit}, {"Quantum", q.Quantum}, {"InitialQuantum", q.InitialQuantum}} {
		if err := c.nonNegative(f.field, f.v, math.MaxUint32); err != nil {
			return err
		}
	}
	if q.MaxRate > maxBytesRate {
		return c.fail("MaxRate", "%v is above %v, the most the kernel's field holds", q.MaxRate, maxBytesRate)
	}
	return nil
}

// FqCodel is fair queueing with controlled delay (CoDel) per flow.
type FqCodel struct {
	Parent, Handle string
	// Limit is the packets the qdisc holds (kernel default 10240); Flows
	// the number of flow queues (1024), fixed once made.
	Limit, Flows int
	// Target is the queueing delay CoDel aims at (5ms); Interval the
	// window it measures it over (100ms). Microsecond resolution.
	Target, Interval time.Duration
	// Quantum is the bytes a flow sends per round (the MTU).
	Quantum int
	// NoECN drops instead of marking ECN-capable packets (ECN is on by
	// default).
	NoECN bool
	// CEThreshold marks packets queued longer than this with CE (0: off).
	CEThreshold time.Duration
}

// Kind returns "fq_codel".
func (FqCodel) Kind() string { return "fq_codel" }

// Place returns Parent ("root" if empty) and Handle.
func (q FqCodel) Place() (string, string) { return placeOf(q.Parent, q.Handle) }

// Validate checks the place, the limits and the times.
func (q FqCodel) Validate() error {
	c := check{q.Kind()}
	if err := checkPlace(c, q.Parent, q.Handle); err != nil {
		return err
	}
	if err := c.nonNegative("Limit", q.Limit, math.MaxUint32); err != nil {
		return err
	}
	if err := c.nonNegative("Flows", q.Flows, 65536); err != nil {
		return err
	}
	if err := c.nonNegative("Quantum", q.Quantum, math.MaxUint32); err != nil {
		return err
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"Target", q.Target}, {"Interval", q.Interval}, {"CEThreshold", q.CEThreshold}} {
		if err := c.duration(d.field, d.v, time.Microsecond, maxMicros); err != nil {
			return err
		}
	}
	return nil
}

// Prio is a priority queue of Bands bands, each a class ("1:1" is the
// first) that filters or the packet's priority (through Priomap) pick.
type Prio struct {
	Parent, Handle string
	// Bands is the number of bands, 2..16 (0: 3).
	Bands int
	// Priomap maps each of the 16 packet priorities to a band; nil keeps
	// the kernel's map (which needs 3 bands or more).
	Priomap []int
}

// Kind returns "prio".
func (Prio) Kind() string { return "prio" }

// Place returns Parent ("root" if empty) and Handle.
func (q Prio) Place() (string, string) { return placeOf(q.Parent, q.Handle) }

// Validate checks the place, Bands and Priomap.
func (q Prio) Validate() error {
	c := check{q.Kind()}
	if err := checkPlace(c, q.Parent, q.Handle); err != nil {
		return err
	}
	bands := q.Bands
	if bands == 0 {
		bands = 3
	}
	if bands < 2 || bands > 16 {
		return c.fail("Bands", "%d is out of range 2..16", q.Bands)
	}
	if q.Priomap == nil {
		if bands < 3 {
			return c.fail("Priomap", "is required with %d bands: the kernel's map uses bands 0..2", bands)
		}
		return nil
	}
	if len(q.Priomap) != 16 {
		return c.fail("Priomap", "has %d entries, not 16 (one per packet priority)", len(q.Priomap))
	}
	for i, b := range q.Priomap {
		if b < 0 || b >= bands {
			return c.fail("Priomap", "entry %d is band %d, out of range 0..%d", i, b, bands-1)
		}
	}
	return nil
}

// Ingress is the ingress qdisc: it holds filters on what the device
// receives (Parent "ingress" of a filter). It has no options.
type Ingress struct{}

// Kind returns "ingress".
func (Ingress) Kind() string { return "ingress" }

// Place returns "ingress" and "ffff:", the only place of an ingress qdisc.
func (Ingress) Place() (string, string) { return "ingress", "ffff:" }

// Validate has nothing to check.
func (Ingress) Validate() error { return nil }

// Clsact holds filters on both directions: Parent "ingress" of a filter
// for what the device receives, "egress" for what it sends. It has no
// options and replaces an ingress qdisc's role (a device has one or the
// other).
type Clsact struct{}

// Kind returns "clsact".
func (Clsact) Kind() string { return "clsact" }

// Place returns "ingress" and "ffff:", the only place of a clsact qdisc.
func (Clsact) Place() (string, string) { return "ingress", "ffff:" }

// Validate has nothing to check.
func (Clsact) Validate() error { return nil }
