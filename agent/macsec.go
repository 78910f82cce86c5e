package agent

import (
	"context"
	"fmt"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/macsec"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// MACsec devices (issue 18): netlink has no macsec link type, so the
// RTM_NEWLINK request and the macsec generic netlink requests are built
// by internal/macsec and sent here, in the host's namespace.

func init() {
	probeLinks["macsec"] = func(p int) netlink.Link {
		return &netlink.GenericLink{LinkAttrs: probeChild(p), LinkType: "macsec"}
	}
}

// rawData is a request payload built elsewhere.
type rawData []byte

func (r rawData) Len() int          { return len(r) }
func (r rawData) Serialize() []byte { return r }

// createMacsec makes m; its undo deletes it (and its keys with it). The
// caller holds h.mu.
func (h *host) createMacsec(m devices.Macsec) (undo, error) {
	u := undo{Op: opDeleteLink, Link: m.Name}
	parent, err := h.link(m.Parent)
	if err != nil {
		return u, err
	}
	msg, err := macsec.NewLink(m, parent.Attrs().Index)
	if err != nil {
		return u, badArg(err)
	}
	err = h.do(func() error {
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
		for _, d := range msg {
			req.AddData(d)
		}
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
	if err != nil {
		return u, fmt.Errorf("create macsec %q on %s: %w", m.Name, h.label(), err)
	}
	return u, nil
}

// MacsecAdd installs a MACsec device's associations and channels with
// their keys. It journals nothing: they go with the device, whose undo
// CreateLink journaled.
func (s *Server) MacsecAdd(_ context.Context, req *pb.MacsecRequest) (*pb.ChangeReply, error) {
	var c devices.MacsecConfig
	if err := strictJSON(req.Spec, &c); err != nil {
		return nil, invalid(fmt.Errorf("macsec config: %w", err))
	}
	if err := c.Validate(); err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	l, err := h.link(c.Link)
	if err != nil {
		return nil, failed(err)
	}
	if l.Type() != "macsec" {
		return nil, invalid(fmt.Errorf("%s: device %q is a %s, not a macsec device", h.label(), c.Link, l.Type()))
	}
	msgs, err := macsec.Messages(c, l.Attrs().Index)
	if err != nil {
		return nil, invalid(err)
	}
	err = h.do(func() error {
		fam, err := netlink.GenlFamilyGet(macsec.GenlName)
		if err != nil {
			return fmt.Errorf("find the macsec generic netlink family (module macsec): %w", err)
		}
		for i, m := range msgs {
			r := nl.NewNetlinkRequest(int(fam.ID), unix.NLM_F_ACK)
			r.AddData(rawData(m.Data))
			if _, err := r.Execute(unix.NETLINK_GENERIC, 0); err != nil {
				return fmt.Errorf("request %d (command %d): %w", i, m.Cmd, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, failed(fmt.Errorf("configure macsec %q on %s: %w", c.Link, h.label(), err))
	}
	return &pb.ChangeReply{}, nil
}
