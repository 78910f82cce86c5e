package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"golang.org/x/sys/unix"
)

// ethtoolDo runs f with an ethtool socket in the host's network namespace.
func (h *host) ethtoolDo(f func(fd int) error) error {
	return h.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return f(fd)
	})
}

// setFeatures switches features of a device and returns the undo that
// switches back those it changed.
func (h *host) setFeatures(name string, want map[string]bool) (undo, error) {
	if _, err := h.link(name); err != nil {
		return undo{}, err
	}
	if len(want) == 0 {
		return undo{}, badArg(errors.New("no feature given"))
	}
	var old map[string]bool
	err := h.ethtoolDo(func(fd int) error {
		var err error
		old, err = ethtool.Set(fd, name, want)
		return err
	})
	u := undo{Op: opSetFeatures, Link: name, Features: old}
	if err != nil {
		return u, fmt.Errorf("set features %s of %q on %s: %w", featureList(want), name, h.label(), err)
	}
	return u, nil
}

func featureList(f map[string]bool) string {
	var parts []string
	for k, v := range f {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// SetFeatures switches ethtool features of a device.
func (s *Server) SetFeatures(_ context.Context, req *pb.SetFeaturesRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.setFeatures(req.Name, req.Features)
	u.Host = req.Host
	if err != nil && len(u.Features) > 0 {
		// Some features changed before the error: keep their undo.
		u.Group = req.Group
		s.journal.add(u)
	}
	return s.change(req.Group, u, err)
}

// Features reads the ethtool features of a device.
func (s *Server) Features(_ context.Context, req *pb.LinkRef) (*pb.FeaturesReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var f ethtool.Features
	err = h.ethtoolDo(func(fd int) error {
		var err error
		f, err = ethtool.Get(fd, req.Name)
		return err
	})
	if err != nil {
		return nil, failed(fmt.Errorf("read features of %q on %s: %w", req.Name, h.label(), err))
	}
	r := &pb.FeaturesReply{Active: f.Active}
	for _, k := range sortedKeys(f.Fixed) {
		if f.Fixed[k] {
			r.Fixed = append(r.Fixed, k)
		}
	}
	return r, nil
}
