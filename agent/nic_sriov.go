package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/sriov"
)

// SR-IOV and switchdev: a PF's VF count through sysfs (sriov_numvfs, on
// the host's thread so that /sys shows its devices), per-VF settings
// through rtnetlink, the eswitch mode and ports through devlink. Every
// change is journaled; Restore sets back VF settings before the VF count
// (made before them), and the old count 0 removes the VFs.

// SetNicNumVfs sets a PF's VF count.
func (s *Server) SetNicNumVfs(_ context.Context, req *pb.NicNumVfsRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var old int
	err = h.do(func() error {
		var err error
		old, err = sriov.SetNumVFs(req.Name, s.nic.devDir(req.Name), int(req.NumVfs))
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	return s.change(req.Group, undo{Op: opSetNumVfs, Host: req.Host, Link: req.Name, Value: strconv.Itoa(old)}, nil)
}

// NicVfs reads a PF's VF count, its maximum and its VFs' settings.
func (s *Server) NicVfs(_ context.Context, req *pb.LinkRef) (*pb.NicVfsReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	l, err := h.link(req.Name)
	if err != nil {
		return nil, failed(err)
	}
	var num, total int
	err = h.do(func() error {
		var err error
		num, total, err = sriov.NumVFs(req.Name, s.nic.devDir(req.Name))
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	r := &pb.NicVfsReply{NumVfs: uint32(num), TotalVfs: uint32(total)}
	for _, v := range sriov.FromLink(l) {
		var netdev string
		_ = h.do(func() error {
			netdev = sriov.VFNetdev(s.nic.devDir(req.Name), v.Index)
			return nil
		})
		r.Vfs = append(r.Vfs, &pb.NicVf{Index: uint32(v.Index), Mac: v.MAC.String(), Vlan: v.Vlan, Qos: v.Qos, MinRate: v.MinRate, MaxRate: v.MaxRate,
			Spoofchk: v.Spoofchk, Trust: v.Trust, LinkState: v.LinkState, Netdev: netdev})
	}
	return r, nil
}

// vfChange is the sriov.VFChange a request asks for.
func vfChange(req *pb.NicVfRequest) (sriov.VFChange, error) {
	c := sriov.VFChange{Vlan: req.Vlan, Qos: req.Qos, MinRate: req.MinRate, MaxRate: req.MaxRate, Spoofchk: req.Spoofchk, Trust: req.Trust, LinkState: req.LinkState}
	if req.Mac != "" {
		mac, err := net.ParseMAC(req.Mac)
		if err != nil {
			return c, fmt.Errorf("VF %d of %q: mac: %w", req.Vf, req.Name, err)
		}
		c.MAC = mac
	}
	return c, nil
}

// SetNicVf changes one VF of a PF.
func (s *Server) SetNicVf(_ context.Context, req *pb.NicVfRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	l, err := h.link(req.Name)
	if err != nil {
		return nil, failed(err)
	}
	c, err := vfChange(req)
	if err != nil {
		return nil, invalid(err)
	}
	vfs := sriov.FromLink(l)
	var old *sriov.VF
	for i := range vfs {
		if vfs[i].Index == int(req.Vf) {
			old = &vfs[i]
		}
	}
	if old == nil {
		return nil, invalid(fmt.Errorf("VF %d of %q on %s: the device has %d VFs", req.Vf, req.Name, h.label(), len(vfs)))
	}
	err = h.do(func() error { return sriov.SetVF(req.Name, l.Attrs().Index, len(vfs), int(req.Vf), c) })
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	back := sriov.Undo(*old, c)
	return s.change(req.Group, undo{Op: opSetVf, Host: req.Host, Link: req.Name, Nic: &nicUndo{VF: int(req.Vf), VFSet: &back}}, nil)
}

// SetNicEswitch sets the eswitch mode of a PF's devlink device.
func (s *Server) SetNicEswitch(_ context.Context, req *pb.NicEswitchRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var dl sriov.Handle
	var old string
	err = h.do(func() error {
		var err error
		if dl, err = sriov.HandleOf(req.Name); err != nil {
			return err
		}
		old, err = sriov.SetEswitch(dl, req.Mode)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	return s.change(req.Group, undo{Op: opSetEswitch, Host: req.Host, Link: req.Name, Key: dl.String(), Value: old}, nil)
}

// NicEswitch reads the eswitch mode and ports of a PF's devlink device.
func (s *Server) NicEswitch(_ context.Context, req *pb.LinkRef) (*pb.NicEswitchReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	r := &pb.NicEswitchReply{}
	err = h.do(func() error {
		dl, err := sriov.HandleOf(req.Name)
		if err != nil {
			return err
		}
		if r.Mode, err = sriov.Eswitch(dl); err != nil {
			return err
		}
		ports, err := sriov.Ports(dl)
		for _, p := range ports {
			r.Ports = append(r.Ports, &pb.NicPort{Index: p.Index, Netdev: p.Netdev, Flavour: p.Flavour, Vf: int32(p.VF)})
		}
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	return r, nil
}

// undoSriov sets back a VF count, a VF's settings or an eswitch mode.
func (s *Server) undoSriov(h *host, u undo) error {
	l, err := h.nl.LinkByName(u.Link)
	if err != nil {
		return nothingToUndo("%s has no device %q", h.label(), u.Link)
	}
	switch u.Op {
	case opSetNumVfs:
		n, err := strconv.Atoi(u.Value)
		if err != nil {
			return fmt.Errorf("%s: VF count %q: %w", u, u.Value, err)
		}
		return h.do(func() error {
			_, err := sriov.SetNumVFs(u.Link, s.nic.devDir(u.Link), n)
			return err
		})
	case opSetVf:
		if u.Nic == nil || u.Nic.VFSet == nil {
			return fmt.Errorf("%s: the entry has nothing to set back", u)
		}
		n := len(l.Attrs().Vfs)
		if u.Nic.VF >= n {
			return nothingToUndo("%s has %d VFs: VF %d is gone", u.Link, n, u.Nic.VF)
		}
		vf, c := u.Nic.VF, *u.Nic.VFSet
		return h.do(func() error { return sriov.SetVF(u.Link, l.Attrs().Index, n, vf, c) })
	}
	return h.do(func() error {
		dl, err := sriov.HandleOf(u.Link)
		if err != nil {
			return err
		}
		if dl.String() != u.Key {
			return nothingToUndo("%s is now devlink device %s, not %s", u.Link, dl, u.Key)
		}
		_, err = sriov.SetEswitch(dl, u.Value)
		return err
	})
}
