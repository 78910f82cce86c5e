// Command lnst-agent serves the lnst-go agent on this machine.
//
//	lnst-agent serve --listen unix:///run/lnst-agent.sock
//
// On SIGINT or SIGTERM it undoes every change it journaled, kills its jobs
// and exits.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/lnst-go/lnst/agent"
	"google.golang.org/grpc"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "lnst-agent: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		return errors.New("usage: lnst-agent serve --listen unix:///PATH [--log-level LEVEL]")
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "", "where to listen: unix:///PATH")
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path, err := listenPath(*listen)
	if err != nil {
		return err
	}
	if hclog.LevelFromString(*level) == hclog.NoLevel {
		return fmt.Errorf("--log-level: unknown level %q (want trace, debug, info, warn or error)", *level)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "lnst-agent", Level: hclog.LevelFromString(*level)})
	srv, err := agent.NewServer(agent.Options{Logger: log})
	if err != nil {
		return err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	defer os.Remove(path)
	g := grpc.NewServer()
	srv.Register(g)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		log.Info("stopping: restoring every change", "signal", sig)
		g.Stop()
	}()
	log.Info("serving", "listen", *listen, "version", agent.Version)
	serveErr := g.Serve(lis)
	if errs := srv.Shutdown(); len(errs) > 0 {
		return fmt.Errorf("restore: %w", errors.Join(errs...))
	}
	return serveErr
}

// listenPath checks a --listen value; only unix sockets are served until
// mutual TLS exists.
func listenPath(listen string) (string, error) {
	switch {
	case listen == "":
		return "", errors.New("--listen is required (unix:///PATH)")
	case strings.HasPrefix(listen, "unix://"):
		p := strings.TrimPrefix(listen, "unix://")
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("--listen %q: the socket path must be absolute (unix:///PATH)", listen)
		}
		return p, nil
	}
	return "", fmt.Errorf("--listen %q: only unix:///PATH is supported; TCP needs mutual TLS, which this version does not have yet", listen)
}
