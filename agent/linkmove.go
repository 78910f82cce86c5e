package agent

import (
	"context"
	"errors"
	"fmt"
	"os"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"
)

// SetLinkNetns moves a device into another host of this agent. The
// kernel takes the device down and drops its addresses on the way; the
// undo moves it back, found by name in the target, and sets it up again
// if it was up. A target gone by then took the device with it (a veth is
// destroyed, a physical device went back to the initial namespace): there
// is nothing to undo.
func (s *Server) SetLinkNetns(_ context.Context, req *pb.SetLinkNetnsRequest) (*pb.ChangeReply, error) {
	if err := checkLinkName(req.Name); err != nil {
		return nil, invalid(err)
	}
	if req.Target == req.Host {
		return nil, invalid(fmt.Errorf("move device %q: target host %q is the host it is on", req.Name, req.Target))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	to, err := s.host(req.Target)
	if err != nil {
		return nil, status.Errorf(status.Code(err), "move device %q: target: %v", req.Name, status.Convert(err).Message())
	}
	up, err := h.moveLink(req.Name, to)
	return s.change(req.Group, undo{Op: opMoveLink, Host: req.Target, Link: req.Name, Netns: req.Host, Up: &up}, err)
}

// nsFd returns a descriptor of the host's network namespace, to be closed.
func (h *host) nsFd() (netns.NsHandle, error) {
	if h.ns >= 0 {
		fd, err := unix.Dup(int(h.ns))
		return netns.NsHandle(fd), err
	}
	// The main thread never leaves the agent's own namespace (see init).
	return netns.GetFromPid(os.Getpid())
}

// moveLink moves device name of h into host to and reports whether it
// was up.
func (h *host) moveLink(name string, to *host) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(name)
	if err != nil {
		return false, err
	}
	up := l.Attrs().Flags&unix.IFF_UP != 0
	fd, err := to.nsFd()
	if err != nil {
		return up, fmt.Errorf("move %q from %s to %s: open its namespace: %w", name, h.label(), to.label(), err)
	}
	defer fd.Close()
	if err := h.nl.LinkSetNsFd(l, int(fd)); err != nil {
		return up, fmt.Errorf("move %q from %s to %s: %w", name, h.label(), to.label(), err)
	}
	return up, nil
}

// undoMoveLink moves u.Link from h back to host u.Netns.
func (s *Server) undoMoveLink(h *host, u undo) error {
	s.mu.Lock()
	back := s.hosts[u.Netns]
	s.mu.Unlock()
	if back == nil {
		return nothingToUndo("host %q, where %q came from, is gone", u.Netns, u.Link)
	}
	if _, err := h.nl.LinkByName(u.Link); err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		return fmt.Errorf("find %q: %w", u.Link, err)
	}
	if _, err := h.moveLink(u.Link, back); err != nil {
		return err
	}
	if u.Up == nil || !*u.Up {
		return nil
	}
	l, err := back.nl.LinkByName(u.Link)
	if err == nil {
		err = back.setUp(l, true)
	}
	if err != nil {
		return fmt.Errorf("set %q up again on %s: %w", u.Link, back.label(), err)
	}
	back.waitUsable(u.Link)
	return nil
}

// RenameLink renames a device. The kernel renames only a device that is
// down: one that is up is taken down, renamed and set up again.
func (s *Server) RenameLink(_ context.Context, req *pb.RenameLinkRequest) (*pb.ChangeReply, error) {
	for _, n := range []string{req.Name, req.NewName} {
		if err := checkLinkName(n); err != nil {
			return nil, invalid(fmt.Errorf("rename %q to %q: %w", req.Name, req.NewName, err))
		}
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	err = h.rename(req.Name, req.NewName)
	return s.change(req.Group, undo{Op: opRenameLink, Host: req.Host, Link: req.NewName, Rename: req.Name}, err)
}

func (h *host) rename(name, newName string) error {
	up, err := h.renameLocked(name, newName)
	if err == nil && up {
		h.waitUsable(newName)
	}
	return err
}

func (h *host) renameLocked(name, newName string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(name)
	if err != nil {
		return false, err
	}
	up := l.Attrs().Flags&unix.IFF_UP != 0
	if up {
		if err := h.setUp(l, false); err != nil {
			return up, fmt.Errorf("rename %q to %q: %w", name, newName, err)
		}
	}
	err = h.nl.LinkSetName(l, newName)
	if err != nil {
		err = fmt.Errorf("rename %q to %q on %s: %w", name, newName, h.label(), err)
		if errors.Is(err, unix.EEXIST) {
			err = badArg(err)
		}
	}
	if up {
		// By index: the device's name is whichever the rename left.
		if uerr := h.setUp(l, true); uerr != nil && err == nil {
			err = uerr
		}
	}
	return up, err
}

// undoRename renames u.Link back to u.Rename; a device gone is
// errNothingToUndo.
func (h *host) undoRename(u undo) error {
	if _, err := h.nl.LinkByName(u.Link); err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		return fmt.Errorf("find %q: %w", u.Link, err)
	}
	return h.rename(u.Link, u.Rename)
}
