package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CreateHost makes a namespace host.
func (s *Server) CreateHost(_ context.Context, req *pb.CreateHostRequest) (*pb.CreateHostReply, error) {
	if !s.lab {
		return nil, status.Error(codes.FailedPrecondition, "this agent is not a lab agent: it serves only its own machine")
	}
	if req.Name == "" {
		return nil, invalid(errors.New("host name is empty"))
	}
	if _, err := s.host(req.Name); err == nil {
		return nil, status.Errorf(codes.AlreadyExists, "host %q exists", req.Name)
	} else if status.Code(err) == codes.Unavailable {
		return nil, err
	}
	if err := s.addHost(req.Group, req.Name, fmt.Sprintf("host %q exists", req.Name)); err != nil {
		return nil, err
	}
	return &pb.CreateHostReply{Host: req.Name}, nil
}

// addHost makes the namespace host id and journals its removal in group;
// exists is the message when a host id was added meanwhile.
func (s *Server) addHost(group, id, exists string) error {
	h, err := s.newHost(id, true)
	if err != nil {
		return failed(err)
	}
	s.mu.Lock()
	_, dup := s.hosts[id]
	closed := s.closed
	if dup || closed {
		s.mu.Unlock()
		h.close()
		if closed {
			return status.Error(codes.Unavailable, "agent is shutting down")
		}
		return status.Error(codes.AlreadyExists, exists)
	}
	s.hosts[id] = h
	s.mu.Unlock()
	s.log.Debug("created namespace host", "host", id)
	_, err = s.record(group, undo{Op: opDestroyHost, Host: id})
	return err
}

// DestroyHost kills the host's jobs and removes it.
func (s *Server) DestroyHost(_ context.Context, req *pb.HostRef) (*pb.Empty, error) {
	if req.Host == "" {
		return nil, invalid(errors.New("the agent's own host cannot be destroyed"))
	}
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	s.destroyHost(req.Host)
	return &pb.Empty{}, nil
}

func (s *Server) destroyHost(name string) {
	s.mu.Lock()
	h, ok := s.hosts[name]
	delete(s.hosts, name)
	s.mu.Unlock()
	if !ok {
		return
	}
	h.stopJobs()
	h.stopTeamds()
	s.captures.stopHost(name)
	h.close()
	s.log.Debug("destroyed namespace host", "host", name)
}

// Connect gives a namespace host an interface on a lab network.
func (s *Server) Connect(_ context.Context, req *pb.ConnectRequest) (*pb.Empty, error) {
	if !s.lab {
		return nil, status.Error(codes.FailedPrecondition, "this agent is not a lab agent")
	}
	if err := checkLinkName(req.Ifname); err != nil {
		return nil, invalid(err)
	}
	if req.Network == "" {
		return nil, invalid(errors.New("network name is empty"))
	}
	var impair tc.Qdisc
	if req.ImpairKind != "" {
		var err error
		if impair, err = tc.UnmarshalQdisc(req.ImpairKind, req.ImpairSpec); err != nil {
			return nil, invalid(fmt.Errorf("connect %s of host %q: impairment: %w", req.Ifname, req.Host, err))
		}
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	sw, port, err := s.network(req.Network, req.Group)
	if err != nil {
		return nil, failed(err)
	}
	// The link-local address comes without detection (labdad.go).
	old, err := h.quietDAD()
	if err != nil {
		return nil, failed(err)
	}
	// The port is not journaled: it goes with the host's namespace or the
	// network's, whichever is removed first.
	err = sw.connect(h, req.Ifname, labBridge, port)
	if serr := h.settleDAD(req.Ifname, old); err == nil {
		err = serr
	}
	if err != nil {
		return nil, failed(fmt.Errorf("connect %s of host %q to network %q: %w", req.Ifname, req.Host, req.Network, err))
	}
	if impair != nil {
		// Not journaled either: it goes with the port.
		if err := sw.impairPort(port, impair); err != nil {
			return nil, failed(fmt.Errorf("connect %s of host %q to network %q: impair the switch port %s: %w", req.Ifname, req.Host, req.Network, port, err))
		}
	}
	return &pb.Empty{}, nil
}

// labBridge is the name of the bridge in a lab network's namespace.
const labBridge = "br0"

// network returns the switch of a lab network, a namespace holding its
// bridge, creating it on first use, and a fresh port name. Each network has
// its own namespace so that removing it is one namespace release, which
// the kernel batches, rather than one device deletion (and RCU barrier) per
// port.
func (s *Server) network(network, group string) (sw *host, port string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, "", status.Error(codes.Unavailable, "agent is shutting down")
	}
	s.ports++
	port = fmt.Sprintf("p%d", s.ports)
	if sw, ok := s.networks[network]; ok {
		return sw, port, nil
	}
	sw, err = newNamespaceHost("network "+network, false)
	if err != nil {
		return nil, "", err
	}
	if err := sw.createBridge(labBridge); err != nil {
		sw.close()
		return nil, "", fmt.Errorf("create bridge for network %q: %w", network, err)
	}
	s.networks[network] = sw
	if _, err := s.record(group, undo{Op: opDestroyNetwork, Network: network}); err != nil {
		return nil, "", err
	}
	return sw, port, nil
}

// DestroyNetwork removes a lab network: its namespace, bridge and ports.
func (s *Server) DestroyNetwork(_ context.Context, req *pb.DestroyNetworkRequest) (*pb.Empty, error) {
	s.destroyNetwork(req.Network)
	return &pb.Empty{}, nil
}

func (s *Server) destroyNetwork(network string) {
	s.mu.Lock()
	sw, ok := s.networks[network]
	delete(s.networks, network)
	s.mu.Unlock()
	if ok {
		sw.close()
	}
}

// CreateNetns makes a namespace host inside a host.
func (s *Server) CreateNetns(_ context.Context, req *pb.CreateNetnsRequest) (*pb.CreateHostReply, error) {
	if req.Name == "" || strings.ContainsAny(req.Name, "/\x00") {
		return nil, invalid(fmt.Errorf("namespace name %q is empty or has '/'", req.Name))
	}
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	id := req.Name
	if req.Host != "" {
		id = req.Host + "/" + req.Name
	}
	if err := s.addHost(req.Group, id, fmt.Sprintf("host %q already has a namespace %q", req.Host, req.Name)); err != nil {
		return nil, err
	}
	return &pb.CreateHostReply{Host: id}, nil
}
