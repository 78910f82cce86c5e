package lnsttest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// SubConfig is one setting of one axis of a sub-configuration matrix:
// "gro=off,gso=on,tso=on", "mtu=9000", "pin=split".
type SubConfig struct {
	// Name is the setting's part of the cell's subtest name: "key=value"
	// pairs joined by ',', with no '/' or blank.
	Name string
	// Apply makes the setting on the cell's test, through the journaled
	// API (Device.SetFeatures, SetMTU, SetRing, SetCoalesce, Sysctl...),
	// so that it is undone when the cell ends. Nil for a setting the
	// body reads instead (Values).
	Apply func(t testing.TB)
	// Values are what the body reads with Cell.Value ("pin": "split").
	Values map[string]string
}

// Axis is one dimension of a matrix: its settings, one per cell.
type Axis []SubConfig

// Cell is one combination of a matrix, one setting of each axis.
type Cell struct {
	// Name is the cell's subtest name: its settings' names joined by ','.
	Name   string
	values map[string]string
}

// Value returns the value of key the cell's settings give (SubConfig
// Values), "" if none does.
func (c Cell) Value(key string) string { return c.values[key] }

// Matrix runs body once per combination of the axes' settings (their
// cartesian product, the first axis varying slowest), each as a subtest
// named by its settings ("gro=off,gso=on,tso=on,mtu=9000"): the settings
// are applied on the subtest and undone when it ends, so each cell starts
// from the recipe's configuration, and go test -run 'TestX/gro=off'
// reruns matching cells alone. A body that measures several flows names
// them as its own subtests ("TestX/gro=off,gso=on,tso=on/tcp_stream_16k").
// An empty axis or a setting with an empty or duplicate name fails t.
func Matrix(t *testing.T, axes []Axis, body func(t *testing.T, c Cell)) {
	t.Helper()
	cells, err := cellsOf(axes)
	if err != nil {
		t.Fatalf("lnsttest.Matrix: %v", err)
	}
	for _, cell := range cells {
		t.Run(cell.name, func(t *testing.T) {
			for _, sc := range cell.settings {
				if sc.Apply != nil {
					sc.Apply(t)
				}
			}
			body(t, Cell{Name: cell.name, values: cell.values})
		})
	}
}

type matrixCell struct {
	name     string
	settings []SubConfig
	values   map[string]string
}

// cellsOf is the cartesian product of axes, in order.
func cellsOf(axes []Axis) ([]matrixCell, error) {
	cells := []matrixCell{{values: map[string]string{}}}
	for i, ax := range axes {
		if len(ax) == 0 {
			return nil, fmt.Errorf("axis %d has no setting", i+1)
		}
		seen := map[string]bool{}
		for _, sc := range ax {
			switch {
			case sc.Name == "" || strings.ContainsAny(sc.Name, "/ \t\n"):
				return nil, fmt.Errorf("axis %d: setting name %q is empty or has a '/' or a blank", i+1, sc.Name)
			case seen[sc.Name]:
				return nil, fmt.Errorf("axis %d: setting %q twice", i+1, sc.Name)
			}
			seen[sc.Name] = true
		}
		var next []matrixCell
		for _, c := range cells {
			for _, sc := range ax {
				n := matrixCell{name: sc.Name, settings: append(append([]SubConfig(nil), c.settings...), sc), values: map[string]string{}}
				if c.name != "" {
					n.name = c.name + "," + sc.Name
				}
				for k, v := range c.values {
					n.values[k] = v
				}
				for k, v := range sc.Values {
					n.values[k] = v
				}
				next = append(next, n)
			}
		}
		cells = next
	}
	return cells, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Offloads is the axis of every on/off combination of the given ethtool
// features ("gro", "gso", "tso"), set on every device in devs: 2^n
// settings named "gro=off,gso=off,tso=off"..., all off first.
func Offloads(devs []*Device, features ...string) Axis {
	var ax Axis
	n := len(features)
	for mask := 0; mask < 1<<n; mask++ {
		set := map[string]bool{}
		var parts []string
		for i, f := range features {
			on := mask&(1<<(n-1-i)) != 0
			set[f] = on
			parts = append(parts, f+"="+onOff(on))
		}
		ax = append(ax, OffloadSet(devs, set, strings.Join(parts, ",")))
	}
	return ax
}

// OffloadSet is one setting of chosen ethtool features on every device
// in devs; name "" names it by its features ("gro=on,tso=off", sorted).
// Its Values give each feature's "on" or "off" (Cell.Value("gro")).
func OffloadSet(devs []*Device, features map[string]bool, name string) SubConfig {
	if name == "" {
		keys := make([]string, 0, len(features))
		for k := range features {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+onOff(features[k]))
		}
		name = strings.Join(parts, ",")
	}
	values := map[string]string{}
	for k, on := range features {
		values[k] = onOff(on)
	}
	return SubConfig{Name: name, Values: values, Apply: func(t testing.TB) {
		t.Helper()
		for _, d := range devs {
			d.SetFeatures(t, features)
		}
	}}
}

// MTUs is the axis of MTUs set on every device in devs: "mtu=1500",
// "mtu=9000" (Cell.Value("mtu")). Devices are set in order: give a lower device before the
// one stacked on it.
func MTUs(devs []*Device, mtus ...int) Axis {
	var ax Axis
	for _, mtu := range mtus {
		ax = append(ax, SubConfig{Name: "mtu=" + strconv.Itoa(mtu), Values: map[string]string{"mtu": strconv.Itoa(mtu)}, Apply: func(t testing.TB) {
			t.Helper()
			for _, d := range devs {
				d.SetMTU(t, mtu)
			}
		}})
	}
	return ax
}

// uintParams formats ethtool parameters as "rx:512:tx:512": sorted
// key:value pairs joined by ':', usable in a subtest name.
func uintParams(m map[string]uint32) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+":"+strconv.FormatUint(uint64(m[k]), 10))
	}
	return strings.Join(parts, ":")
}

// Rings is the axis of ring sizes (ethtool -G: "rx", "tx") set on every
// device in devs: "ring=rx:512:tx:512".
func Rings(devs []*Device, sizes ...map[string]uint32) Axis {
	var ax Axis
	for _, s := range sizes {
		ax = append(ax, SubConfig{Name: "ring=" + uintParams(s), Apply: func(t testing.TB) {
			t.Helper()
			for _, d := range devs {
				d.SetRing(t, s)
			}
		}})
	}
	return ax
}

// Coalescing is the axis of interrupt coalescing settings (ethtool -C:
// "rx-usecs", "tx-frames"...) set on every device in devs:
// "coalesce=rx-usecs:0".
func Coalescing(devs []*Device, settings ...map[string]uint32) Axis {
	var ax Axis
	for _, s := range settings {
		ax = append(ax, SubConfig{Name: "coalesce=" + uintParams(s), Apply: func(t testing.TB) {
			t.Helper()
			for _, d := range devs {
				d.SetCoalesce(t, s)
			}
		}})
	}
	return ax
}

// CPU pinning policies of the CPUPinning axis.
const (
	// PinNone leaves the measuring processes free.
	PinNone = "none"
	// PinSame pins both ends of a flow to the same CPU.
	PinSame = "same"
	// PinSplit pins the two ends to different CPUs.
	PinSplit = "split"
)

// CPUPinning is the axis of CPU pinning policies (PinNone, PinSame,
// PinSplit) for the measuring processes: "pin=split". The body reads the
// policy as Cell.Value("pin") and pins its flows by it (perf.Flow.Pin).
func CPUPinning(policies ...string) Axis {
	var ax Axis
	for _, p := range policies {
		ax = append(ax, SubConfig{Name: "pin=" + p, Values: map[string]string{"pin": p}})
	}
	return ax
}
