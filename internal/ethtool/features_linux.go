package ethtool

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Features is a device's ethtool feature state, keyed by kernel feature
// name (rx-gro, tx-tcp-segmentation, ...).
type Features struct {
	// Active maps every feature the kernel knows to whether it is on
	// (unused feature bits, which have no name, are left out).
	Active map[string]bool
	// Fixed maps every feature to whether it cannot be changed on this
	// device (ethtool's "[fixed]").
	Fixed map[string]bool
}

// device is one reading of a device's features: names by bit index and
// the GFEATURES blocks.
type device struct {
	ifname string
	names  []string
	index  map[string]int
	blocks blocks
	// size is the kernel's word count, which SFEATURES must send exactly.
	size int
}

// Get reads the features of device ifname. fd is an AF_INET/SOCK_DGRAM
// socket in the device's network namespace.
func Get(fd int, ifname string) (Features, error) {
	d, err := read(fd, ifname)
	if err != nil {
		return Features{}, err
	}
	return d.features(), nil
}

func (d *device) features() Features {
	f := Features{Active: unpack(d.blocks.active, d.names), Fixed: make(map[string]bool, len(d.names))}
	for i, n := range d.names {
		if n == "" {
			delete(f.Active, n)
			continue
		}
		f.Fixed[n] = d.blocks.fixed(i)
	}
	return f
}

func read(fd int, ifname string) (*device, error) {
	return readVia(ifname, func(buf []byte) error {
		_, err := ioctl(fd, ifname, buf)
		return err
	})
}

// readVia reads the features of ifname through do, which sends one
// SIOCETHTOOL request (its struct buf, filled in place) for the device:
// the ioctl, or in tests a captured answer.
func readVia(ifname string, do func(buf []byte) error) (*device, error) {
	buf := encodeSSetInfo()
	if err := do(buf); err != nil {
		return nil, fmt.Errorf("count ethtool features of %s: %w", ifname, err)
	}
	n, err := decodeSSetInfo(buf)
	if err != nil {
		return nil, fmt.Errorf("count ethtool features of %s: %w", ifname, err)
	}
	buf = encodeGStrings(n)
	if err := do(buf); err != nil {
		return nil, fmt.Errorf("read ethtool feature names of %s: %w", ifname, err)
	}
	names, err := decodeGStrings(buf)
	if err != nil {
		return nil, fmt.Errorf("read ethtool feature names of %s: %w", ifname, err)
	}
	buf = encodeGFeatures(blockCount(len(names)))
	if err := do(buf); err != nil {
		return nil, fmt.Errorf("read ethtool features of %s: %w", ifname, err)
	}
	b, size := decodeGFeatures(buf)
	d := &device{ifname: ifname, names: names, index: make(map[string]int, len(names)), blocks: b, size: size}
	for i, n := range names {
		if n != "" { // unused bits have empty names
			d.index[n] = i
		}
	}
	return d, nil
}

// Set switches the features of device ifname to the values in want, keyed
// by `ethtool -K` short name (see Expand) or kernel feature name, and
// returns the previous values of exactly the features it changed, keyed by
// kernel name, so that Set(fd, ifname, old) undoes it. fd is an
// AF_INET/SOCK_DGRAM socket in the device's network namespace.
//
// A short name switches those of its members the device can change and
// leaves its fixed members alone, as ethtool -K does. A name the device
// does not have, a fixed feature asked to change, or two names asking
// opposite values of one feature is an error and nothing is changed.
// Features already at the wanted value are left untouched. After setting,
// Set reads the features back; features that did not take the wanted value
// are named in the error, and old still holds those that did change.
func Set(fd int, ifname string, want map[string]bool) (old map[string]bool, err error) {
	d, err := read(fd, ifname)
	if err != nil {
		return nil, err
	}
	changes, err := d.plan(want)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return map[string]bool{}, nil
	}
	valid, requested, err := pack(d.size, changes)
	if err != nil {
		return nil, fmt.Errorf("set ethtool features of %s: %w", ifname, err)
	}
	flags, err := ioctl(fd, ifname, encodeSFeatures(valid, requested))
	if err != nil {
		return nil, fmt.Errorf("set ethtool features %s of %s: %w", d.describe(changes), ifname, err)
	}
	after, err := read(fd, ifname)
	if err != nil {
		return nil, fmt.Errorf("set ethtool features %s of %s: re-read: %w", d.describe(changes), ifname, err)
	}
	old = make(map[string]bool)
	var missed []string
	for i, on := range changes {
		now := bitAt(after.blocks.active, i)
		if now != on {
			missed = append(missed, fmt.Sprintf("%s (wanted %s, is %s)", d.names[i], onOff(on), onOff(now)))
			continue
		}
		old[d.names[i]] = !on
	}
	if len(missed) == 0 && flags&flagUnsupported == 0 {
		return old, nil
	}
	if len(missed) == 0 {
		// The kernel refused part of the request, yet the re-read shows
		// every feature at its wanted value.
		return old, fmt.Errorf("set ethtool features %s of %s: kernel flags: %s", d.describe(changes), ifname, describeFlags(flags))
	}
	slices.Sort(missed)
	return old, fmt.Errorf("set ethtool features of %s: did not take: %s (kernel flags: %s)",
		ifname, strings.Join(missed, ", "), describeFlags(flags))
}

// plan resolves want to the feature values to send, by bit index, keeping
// only those that differ from the active value.
func (d *device) plan(want map[string]bool) (map[int]bool, error) {
	wanted := make(map[int]bool)
	from := make(map[int]string)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		targets, err := d.targets(name, want[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, i := range targets {
			if prev, ok := wanted[i]; ok && prev != want[name] {
				errs = append(errs, fmt.Errorf("%s and %s ask opposite values of %s on %s", from[i], name, d.names[i], d.ifname))
				continue
			}
			wanted[i], from[i] = want[name], name
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	changes := make(map[int]bool)
	for i, on := range wanted {
		if bitAt(d.blocks.active, i) != on {
			changes[i] = on
		}
	}
	return changes, nil
}

// targets returns the indices of the changeable features name stands for
// on this device, or an error if it has none or name asks to change a
// fixed one.
func (d *device) targets(name string, on bool) ([]int, error) {
	members, short := expandIn(name, d.names)
	switch {
	case short && len(members) == 0:
		known, _ := expandIn(name, knownFeatures)
		return nil, fmt.Errorf("%s has no feature %s (%s)", d.ifname, name, strings.Join(known, ", "))
	case short:
	case d.hasName(name):
		members = []string{name}
	case slices.Contains(knownFeatures, name):
		return nil, fmt.Errorf("%s has no feature %s", d.ifname, name)
	default:
		return nil, unknownError(name)
	}
	var targets []int
	var fixed []string
	for _, m := range members {
		i := d.index[m]
		switch {
		case !d.blocks.fixed(i):
			targets = append(targets, i)
		case bitAt(d.blocks.active, i) != on:
			fixed = append(fixed, m)
		}
	}
	// A short name with some changeable members leaves its fixed ones
	// alone, like ethtool -K; otherwise changing a fixed feature is an error.
	if len(fixed) > 0 && (!short || len(targets) == 0) {
		return nil, fmt.Errorf("%s %s fixed on %s", strings.Join(fixed, ", "), isAre(len(fixed)), d.ifname)
	}
	return targets, nil
}

func (d *device) hasName(name string) bool {
	_, ok := d.index[name]
	return ok
}

// describe lists changes as "rx-gro on, tx-tcp-segmentation off".
func (d *device) describe(changes map[int]bool) string {
	var parts []string
	for _, i := range slices.Sorted(maps.Keys(changes)) {
		parts = append(parts, d.names[i]+" "+onOff(changes[i]))
	}
	return strings.Join(parts, ", ")
}

// describeFlags names the ETHTOOL_F_* bits SFEATURES returned.
func describeFlags(flags int) string {
	var names []string
	if flags&flagUnsupported != 0 {
		names = append(names, "unsupported")
	}
	if flags&flagWish != 0 {
		names = append(names, "wish")
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
