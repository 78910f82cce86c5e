package lnsttest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/cpulist"
)

// IRQ is one interrupt of a device: an MSI/MSI-X vector.
type IRQ struct {
	// Num is the interrupt's number (/proc/irq/<Num>).
	Num int
	// Name is its action name in /proc/interrupts ("virtio2-input.0").
	Name string
	// Queue is the queue its name ends in; -1 when it names none (a
	// config or async interrupt).
	Queue int
	// Kind is "rx", "tx", "combined" or "" when the name does not say.
	Kind string
	// Affinity is its CPU list ("0-3").
	Affinity string
}

// IRQs lists the device's interrupts, those of its bus device (none for a
// soft device such as a veth), and the host's online CPUs.
func (d *Device) IRQs(t testing.TB) (irqs []IRQ, online []int) {
	t.Helper()
	r, err := d.host.client.NicIrqs(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if err != nil {
		t.Fatalf("%s: list interrupts of %s: %v", d.host.name, d.name, err)
	}
	online, err = cpulist.Parse(r.Cpus)
	if err != nil {
		t.Fatalf("%s: online CPUs: %v", d.host.name, err)
	}
	for _, i := range r.Irqs {
		irqs = append(irqs, IRQ{Num: int(i.Irq), Name: i.Name, Queue: int(i.Queue), Kind: i.Kind, Affinity: i.Affinity})
	}
	return irqs, online
}

// SetIRQAffinity sets the CPU list ("0-3,8") of each interrupt given, by
// number, and sets the old lists back when the test ends. A CPU the host
// does not have online fails the test naming the interrupt and the
// host's CPUs. Interrupts are the machine's: on a namespace host of the
// lab this changes them for the whole machine, until the test ends.
func (h *Host) SetIRQAffinity(t testing.TB, cpus map[int]string) {
	t.Helper()
	req := &pb.NicIrqAffinityRequest{Host: h.id, Cpus: map[uint32]string{}}
	for n, list := range cpus {
		if n < 0 {
			t.Fatalf("%s: set interrupt affinity: interrupt %d is negative", h.name, n)
		}
		req.Cpus[uint32(n)] = list
	}
	st := h.s.state(t)
	req.Group = st.group
	r, err := h.client.SetIrqAffinity(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: set interrupt affinity %s: %v", h.name, formatAffinity(cpus), err)
	}
	st.logger().Debug("set interrupt affinity", "host", h.name, "cpus", formatAffinity(cpus))
	st.undoAt(t, h.client, "interrupt affinity on "+h.name, r.Seq)
}

func formatAffinity(cpus map[int]string) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(cpus)) {
		parts = append(parts, fmt.Sprintf("%d:%s", n, cpus[n]))
	}
	return strings.Join(parts, " ")
}

// IRQPolicy says which CPUs a device's queue interrupts go to; interrupts
// that serve no queue (config, async) are left alone.
type IRQPolicy struct {
	what string
	cpus []int
	// of gives queue q's CPU list; cpus are the host's online CPUs when
	// the policy names none.
	of func(q int, cpus []int) string
}

// IRQPerQueue pins each queue's interrupts to one CPU: queue q to
// cpus[q % len(cpus)] (every online CPU in turn when none is given), as
// LNST's dev_irq_cpus with one CPU per queue.
func IRQPerQueue(cpus ...int) IRQPolicy {
	return IRQPolicy{what: "one CPU per queue", cpus: cpus, of: func(q int, c []int) string { return strconv.Itoa(c[q%len(c)]) }}
}

// IRQAllOn pins every queue interrupt to one CPU.
func IRQAllOn(cpu int) IRQPolicy {
	return IRQPolicy{what: "all on one CPU", cpus: []int{cpu}, of: func(int, []int) string { return strconv.Itoa(cpu) }}
}

// IRQSpread lets every queue interrupt run on any CPU of the list.
func IRQSpread(cpus ...int) IRQPolicy {
	return IRQPolicy{what: "spread over a CPU list", cpus: cpus, of: func(_ int, c []int) string { return cpulist.Format(c) }}
}

// PinIRQs applies the policy to the device's queue interrupts and returns
// the lists it set, by interrupt number; they are set back when the test
// ends. A device with no queue interrupt (a veth) fails the test.
func (d *Device) PinIRQs(t testing.TB, p IRQPolicy) map[int]string {
	t.Helper()
	return PinIRQsAcross(t, p, d)
}

// PinIRQsAcross applies the policy to the queue interrupts of several
// devices of one host, as LNST's MultiDevInterruptHWConfigMixin: queue q
// of every device gets the same CPUs. It returns the lists it set.
func PinIRQsAcross(t testing.TB, p IRQPolicy, devs ...*Device) map[int]string {
	t.Helper()
	if len(devs) == 0 {
		t.Fatal("pin interrupts: no device given")
	}
	h := devs[0].host
	set := map[int]string{}
	for _, d := range devs {
		if d.host.client != h.client || d.host.id != h.id {
			t.Fatalf("pin interrupts: %s is on %s, %s on %s: one host at a time", devs[0].name, h.name, d.name, d.host.name)
		}
		irqs, online := d.IRQs(t)
		cpus := p.cpus
		if len(cpus) == 0 {
			cpus = online
		}
		for _, c := range cpus {
			if !slices.Contains(online, c) {
				t.Fatalf("%s: pin interrupts of %s %s: CPU %d is not one of the host's online CPUs %s", h.name, d.name, p.what, c, cpulist.Format(online))
			}
		}
		n := 0
		for _, irq := range irqs {
			if irq.Queue >= 0 {
				set[irq.Num] = p.of(irq.Queue, cpus)
				n++
			}
		}
		if n == 0 {
			t.Fatalf("%s: pin interrupts of %s %s: the device has no queue interrupt (%d interrupts in all)", h.name, d.name, p.what, len(irqs))
		}
	}
	h.SetIRQAffinity(t, set)
	return set
}

// SetRPS sets the CPUs that receive packet steering spreads rx queue
// queue's packets over (queues/rx-<queue>/rps_cpus; none turns it off),
// and sets the old mask back when the test ends.
func (d *Device) SetRPS(t testing.TB, queue int, cpus ...int) {
	t.Helper()
	d.setQueueCPUs(t, fmt.Sprintf("queues/rx-%d/rps_cpus", queue), cpus)
}

// SetXPS sets the CPUs whose packets go out through tx queue queue
// (queues/tx-<queue>/xps_cpus), and sets the old mask back when the test
// ends.
func (d *Device) SetXPS(t testing.TB, queue int, cpus ...int) {
	t.Helper()
	d.setQueueCPUs(t, fmt.Sprintf("queues/tx-%d/xps_cpus", queue), cpus)
}

// QueueCPUs reads a queue's RPS or XPS CPUs: attr is
// "queues/rx-0/rps_cpus" or "queues/tx-0/xps_cpus".
func (d *Device) QueueCPUs(t testing.TB, attr string) []int {
	t.Helper()
	cpus, err := cpulist.ParseMask(d.ReadSysfs(t, attr))
	if err != nil {
		t.Fatalf("%s: %s of %s: %v", d.host.name, attr, d.name, err)
	}
	return cpus
}

func (d *Device) setQueueCPUs(t testing.TB, attr string, cpus []int) {
	t.Helper()
	n := d.host.NumCPU(t)
	for _, c := range cpus {
		if c < 0 || c >= n {
			t.Fatalf("%s: set %s of %s: CPU %d is not one of the host's CPUs 0-%d", d.host.name, attr, d.name, c, n-1)
		}
	}
	d.WriteSysfs(t, attr, cpulist.Mask(cpus))
}
