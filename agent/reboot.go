package agent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rebootDelay is how long Reboot waits after its reply before rebooting,
// so that the reply reaches the controller.
const rebootDelay = time.Second

// Reboot reboots the agent's machine: it replies, then a second later runs
// systemctl reboot (or reboot when that fails). The agent of a VM lab
// guest calls reboot(2) itself instead (ServeVM), and boots by kexec a
// kernel LoadKernel loaded. It journals nothing: the
// agent that starts after the reboot takes back, from its on-disk journal,
// what the controller changed before it, as after a crash. A lab agent
// refuses: its hosts are network namespaces of one machine.
func (s *Server) Reboot(_ context.Context, req *pb.RebootRequest) (*pb.Empty, error) {
	if s.lab {
		return nil, status.Error(codes.FailedPrecondition, "reboot: this is a lab agent; its hosts are network namespaces of one machine and cannot reboot")
	}
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	if req.Host != "" {
		return nil, status.Errorf(codes.FailedPrecondition, "reboot: host %q is a network namespace; reboot the agent's own host (\"\")", req.Host)
	}
	reboot := s.files.reboot
	if reboot == nil {
		reboot = systemReboot
	}
	s.log.Warn("reboot requested: rebooting", "in", rebootDelay)
	go func() {
		time.Sleep(rebootDelay)
		if err := reboot(); err != nil {
			s.log.Error("reboot failed", "error", err)
		}
	}()
	return &pb.Empty{}, nil
}

// systemReboot asks systemd to reboot the machine, or the reboot command
// where there is no systemd.
func systemReboot() error {
	var errs []error
	for _, argv := range [][]string{{"systemctl", "reboot"}, {"reboot"}} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out))))
	}
	return errors.Join(errs...)
}
