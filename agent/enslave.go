package agent

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// portOps are the calls enslave makes on a port: a *host's, or a
// recorder's in tests.
type portOps interface {
	setUp(l netlink.Link, up bool) error
	setMaster(l netlink.Link, master string) error
}

// takesDownPortsOnly reports whether a master of this kind enslaves only
// ports that are down: the bonding driver refuses one that is up with a
// bare EPERM, the team driver with EBUSY.
func takesDownPortsOnly(kind string) bool { return kind == "bond" || kind == "team" }

// enslave sets port l's master to master, a device of kind masterKind, as
// a user means it: a port that is up is taken down first when the master
// takes only ports that are down (bond, team), enslaved, and set up
// again. set reports that the master was set; downed that the port was
// taken down and is not known to be up again as it was, so the change's
// undo must set it up.
func enslave(ops portOps, l netlink.Link, master, masterKind string) (set, downed bool, err error) {
	name := l.Attrs().Name
	if l.Attrs().Flags&unix.IFF_UP == 0 || !takesDownPortsOnly(masterKind) {
		err := ops.setMaster(l, master)
		return err == nil, false, err
	}
	if err := ops.setUp(l, false); err != nil {
		return false, false, fmt.Errorf("enslave %q to %s %q: the %s driver takes only ports that are down, and taking it down failed: %w", name, masterKind, master, masterKind, err)
	}
	if err := ops.setMaster(l, master); err != nil {
		if upErr := ops.setUp(l, true); upErr != nil {
			return false, true, fmt.Errorf("%w (it was taken down to be enslaved, and setting it up again failed: %v)", err, upErr)
		}
		return false, false, fmt.Errorf("%w (it was taken down to be enslaved, as the %s driver wants, and is up again)", err, masterKind)
	}
	if err := ops.setUp(l, true); err != nil {
		return true, true, fmt.Errorf("enslave %q to %s %q: set it up again after enslaving it (it was up): %w", name, masterKind, master, err)
	}
	return true, true, nil
}

// masterKind is the kind of device master ("bond", "bridge"), "" for no
// master.
func (h *host) masterKind(master string) (string, error) {
	if master == "" {
		return "", nil
	}
	m, err := h.link(master)
	if err != nil {
		return "", fmt.Errorf("master %w", err)
	}
	return m.Type(), nil
}

// setMasterOf sets port l's master to master, a device of kind ("" for
// none: it releases the port), through ops, and records in u how to undo
// it: the earlier master old, and setting the port up again when it was
// taken down for a bond or team.
func setMasterOf(ops portOps, l netlink.Link, master, kind, old string, u *undo) error {
	set, downed, err := enslave(ops, l, master, kind)
	if downed {
		wasUp := true
		u.Up = &wasUp
	}
	if set {
		u.Master = &old
	}
	return err
}

// undoSetLink undoes an opSetLink change u of device l: its master first
// (through ops; a bond or team releases a port by taking it down), then
// its hardware address, MTU and state.
func (h *host) undoSetLink(ops portOps, l netlink.Link, u undo) error {
	var errs []error
	if u.Master != nil {
		kind, err := h.masterKind(*u.Master)
		if err == nil {
			_, _, err = enslave(ops, l, *u.Master, kind)
		}
		errs = append(errs, err)
	}
	if u.HWAddr != nil {
		errs = append(errs, h.nl.LinkSetHardwareAddr(l, u.HWAddr))
	}
	if u.MTU != nil {
		errs = append(errs, h.nl.LinkSetMTU(l, *u.MTU))
	}
	if u.Up != nil {
		errs = append(errs, ops.setUp(l, *u.Up))
	}
	return errors.Join(errs...)
}
