package agent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/lnst-go/lnst/internal/launch"
	"github.com/lnst-go/lnst/internal/peercred"
	"google.golang.org/grpc"
)

// IsLabAgent reports whether this process was started to be the lab agent.
func IsLabAgent() bool { return os.Getenv(launch.LabSocketEnv) != "" }

// ServeLab runs this process as the local lab's agent and returns its exit
// code. It listens on the unix socket named by launch.LabSocketEnv, accepting
// connections from its own user only (SO_PEERCRED; in the rootless lab's
// user namespace that is the invoking user), and serves until its stdin closes (the controller exited, however it died) or
// SIGTERM arrives; then it undoes every change it journaled and removes its
// namespace hosts. SIGINT is ignored: a Ctrl-C reaches the controller, and
// the controller's exit closes the agent's stdin.
func ServeLab() int {
	log := hclog.New(&hclog.LoggerOptions{
		Name:   fmt.Sprintf("lnst-agent[%d]", os.Getpid()),
		Level:  hclog.LevelFromString(os.Getenv(launch.LabLogEnv)),
		Output: LogOutput(os.Stderr),
	})
	signal.Ignore(syscall.SIGINT)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGHUP)

	opts := Options{Lab: true, Logger: log}
	if v := os.Getenv(launch.LabOutputCapEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			log.Error("start", "error", fmt.Sprintf("%s=%q: want a number of bytes", launch.LabOutputCapEnv, v))
			return 1
		}
		opts.OutputCap = n
	}
	srv, err := NewServer(opts)
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	path := os.Getenv(launch.LabSocketEnv)
	if !filepath.IsAbs(path) {
		log.Error("listen", "error", fmt.Sprintf("%s=%q: want the absolute path of a socket in a directory private to the controller", launch.LabSocketEnv, path))
		return 1
	}
	inner, err := net.Listen("unix", path)
	if err != nil {
		log.Error("listen", "error", err)
		return 1
	}
	// The socket's directory keeps others out; the peer check holds even
	// if its mode is loosened.
	lis := peercred.Restrict(inner, os.Geteuid(), func(r peercred.Refusal) {
		log.Warn("refused a connection from another user", "pid", r.PID, "uid", r.UID, "reason", r.Reason)
	})
	defer os.Remove(filepath.Dir(path)) // after the listener's Close removed the socket; only if empty
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	fmt.Println(launch.ReadyLine)

	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(eof)
	}()
	select {
	case <-eof:
		log.Debug("controller gone: restoring")
	case sig := <-term:
		log.Debug("signal: restoring", "signal", sig)
	}
	return srv.close(g)
}

// close stops serving, undoes everything and reports failures on stderr.
func (s *Server) close(g *grpc.Server) int {
	errs := s.Stop(g)
	for _, err := range errs {
		s.log.Error("restore failed", "error", err)
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

// Stop ends an agent served by g: it stops g taking calls, undoes every
// change the agent journaled (Shutdown) while the calls in flight end
// (those that wait on a job end as Shutdown kills it), then cuts whatever
// still runs. It returns the undo failures.
func (s *Server) Stop(g *grpc.Server) []error {
	graceful := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(graceful)
	}()
	errs := s.Shutdown()
	g.Stop()
	<-graceful
	return errs
}
