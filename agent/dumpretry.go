package agent

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpTries is how many times a netlink dump is made when the kernel
// says a change interrupted it (NLM_F_DUMP_INTR: netlink.ErrDumpInterrupted,
// the results may be incomplete). Another host's build in the same
// namespace, or the kernel's own address work (DAD, link-local), can
// interrupt a dump; the next one almost always goes through.
const dumpTries = 5

// retryDump calls dump until it returns anything but
// netlink.ErrDumpInterrupted, at most dumpTries times.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpTries {
		if v, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// addrList is h.nl.AddrList, made again when interrupted.
func (h *host) addrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	return retryDump(func() ([]netlink.Addr, error) { return h.nl.AddrList(l, family) })
}

// linkList is h.nl.LinkList, made again when interrupted.
func (h *host) linkList() ([]netlink.Link, error) {
	return retryDump(h.nl.LinkList)
}

// neighList is h.nl.NeighList, made again when interrupted.
func (h *host) neighList(index, family int) ([]netlink.Neigh, error) {
	return retryDump(func() ([]netlink.Neigh, error) { return h.nl.NeighList(index, family) })
}
