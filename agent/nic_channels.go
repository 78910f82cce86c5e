package agent

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// channelParams are a device's queue counts, as SetChannels changes
// them; pauseParams its pause frame settings, linkModeParams its speed,
// duplex and autoneg.
var (
	channelParams  = ethtoolParams{opSetChannels, "channels", ethtool.ChannelNames(), ethtool.SetChannels}
	pauseParams    = ethtoolParams{opSetPause, "pause settings", ethtool.PauseNames(), ethtool.SetPause}
	linkModeParams = ethtoolParams{opSetLinkModes, "link modes", ethtool.LinkModeNames(), ethtool.SetLinkModes}
)

// paramsOfOp is the ethtool parameter set an undo entry of op sets back.
func paramsOfOp(op string) ethtoolParams {
	switch op {
	case opSetCoalesce:
		return coalesceParams
	case opSetChannels:
		return channelParams
	case opSetPause:
		return pauseParams
	case opSetLinkModes:
		return linkModeParams
	}
	return ringParams
}

// nicFailed turns err into a gRPC status as failed does, but a driver
// that does not have the setting (EOPNOTSUPP) gives codes.Unimplemented:
// the typed answer a recipe skips on (lnsttest.ErrNotSupported).
func nicFailed(err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return status.Error(codes.Unimplemented, err.Error())
	}
	return failed(err)
}

// SetChannels sets the queue counts of a device.
func (s *Server) SetChannels(_ context.Context, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	return s.setNicParams(channelParams, req)
}

// Channels reads the queue counts of a device and their maximums.
func (s *Server) Channels(_ context.Context, req *pb.LinkRef) (*pb.EthtoolReply, error) {
	return s.readNicParams(channelParams.what, ethtool.Channels, req)
}

// SetPause sets the pause frame settings of a device.
func (s *Server) SetPause(_ context.Context, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	return s.setNicParams(pauseParams, req)
}

// Pause reads the pause frame settings of a device.
func (s *Server) Pause(_ context.Context, req *pb.LinkRef) (*pb.EthtoolReply, error) {
	return s.readNicParams(pauseParams.what, noMax(ethtool.Pause), req)
}

// SetLinkModes sets the speed, duplex or autoneg of a device.
func (s *Server) SetLinkModes(_ context.Context, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	return s.setNicParams(linkModeParams, req)
}

// LinkModes reads the speed, duplex and autoneg of a device.
func (s *Server) LinkModes(_ context.Context, req *pb.LinkRef) (*pb.EthtoolReply, error) {
	return s.readNicParams(linkModeParams.what, noMax(ethtool.LinkModes), req)
}

func noMax(read func(string) (map[string]uint32, error)) func(string) (cur, max map[string]uint32, err error) {
	return func(name string) (map[string]uint32, map[string]uint32, error) {
		cur, err := read(name)
		return cur, nil, err
	}
}

// setNicParams changes settings of a device as setParams does; a driver
// without them answers Unimplemented.
func (s *Server) setNicParams(p ethtoolParams, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.setParams(p, req.Name, req.Params)
	if err != nil {
		return nil, nicFailed(err)
	}
	u.Host = req.Host
	return s.change(req.Group, u, nil)
}

// readNicParams reads settings of a device; a driver without them
// answers Unimplemented.
func (s *Server) readNicParams(what string, read func(string) (cur, max map[string]uint32, err error), req *pb.LinkRef) (*pb.EthtoolReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	r := &pb.EthtoolReply{}
	err = h.do(func() error {
		var err error
		r.Params, r.Max, err = read(req.Name)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("read %s of %q on %s: %w", what, req.Name, h.label(), err))
	}
	return r, nil
}
