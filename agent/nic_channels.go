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

// channelParams are a device's queue counts, as SetChannels changes them.
var channelParams = ethtoolParams{opSetChannels, "channels", ethtool.ChannelNames(), ethtool.SetChannels}

// paramsOfOp is the ethtool parameter set an undo entry of op sets back.
func paramsOfOp(op string) ethtoolParams {
	switch op {
	case opSetCoalesce:
		return coalesceParams
	case opSetChannels:
		return channelParams
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
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.setParams(channelParams, req.Name, req.Params)
	if err != nil {
		return nil, nicFailed(err)
	}
	u.Host = req.Host
	return s.change(req.Group, u, nil)
}

// Channels reads the queue counts of a device and their maximums.
func (s *Server) Channels(_ context.Context, req *pb.LinkRef) (*pb.EthtoolReply, error) {
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
		r.Params, r.Max, err = ethtool.Channels(req.Name)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("read channels of %q on %s: %w", req.Name, h.label(), err))
	}
	return r, nil
}
