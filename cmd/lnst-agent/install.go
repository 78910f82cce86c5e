package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lnst-go/lnst/internal/deploy"
)

// sshFlags are the flags of install and uninstall that say how to log in.
type sshFlags struct {
	identity, knownHosts string
	acceptNew            bool
	pool, certs, name    string
}

func (s *sshFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.identity, "identity", "", "private key file to log in with; default: the keys of the SSH agent at $SSH_AUTH_SOCK")
	fs.StringVar(&s.knownHosts, "known-hosts", defaultKnownHosts(), "known_hosts file the host's key is checked against")
	fs.StringVar(&s.pool, "pool", "", "pool file the host is added to (created if missing) or removed from (required)")
	fs.StringVar(&s.certs, "certs", "", "the controller's certificate directory: CA, client and host certificates (default: certs next to the pool file)")
	fs.StringVar(&s.name, "name", "", "name of the host in the pool file (default: the host of user@host)")
	fs.BoolVar(&s.acceptNew, "accept-new-host-key", false, "add the host's key to --known-hosts if it lists none for the host (a different key is refused all the same)")
}

// defaultKnownHosts is ~/.ssh/known_hosts.
func defaultKnownHosts() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ssh", "known_hosts")
}

// parseTarget parses flags given before and after the one argument,
// user@host.
func parseTarget(fs *flag.FlagSet, args []string, stderr io.Writer) (deploy.Target, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage of %s user@host:\n", fs.Name())
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return deploy.Target{}, err
		}
		return deploy.Target{}, usageError{err}
	}
	if fs.NArg() == 0 {
		return deploy.Target{}, usagef("%s needs user@host", fs.Name())
	}
	arg := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return deploy.Target{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return deploy.Target{}, usagef("unexpected argument %q", fs.Arg(0))
	}
	t, err := deploy.ParseTarget(arg)
	if err != nil {
		return t, usageError{err}
	}
	return t, nil
}

// check checks the flags and fills in the default certificate directory.
func (s *sshFlags) check() error {
	switch {
	case s.pool == "":
		return usagef("--pool is required: the pool file the host is added to or removed from")
	case s.knownHosts == "":
		return usagef("--known-hosts is required: no home directory to find ~/.ssh/known_hosts in")
	}
	if s.certs == "" {
		s.certs = filepath.Join(filepath.Dir(s.pool), "certs")
	}
	return nil
}

func (s *sshFlags) dial(ctx context.Context, t deploy.Target, stdout io.Writer) (*deploy.Conn, error) {
	return deploy.Dial(ctx, t, deploy.SSHConfig{
		Identity:         s.identity,
		KnownHosts:       s.knownHosts,
		AcceptNewHostKey: s.acceptNew,
		Log:              stdout,
	})
}

// install installs the agent on user@host over SSH.
func install(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s sshFlags
	fs := newFlags("install")
	s.register(fs)
	binary := fs.String("agent-binary", "", "lnst-agent binary to copy, built for the host's architecture (default: this executable)")
	port := fs.Int("port", deploy.DefaultPort, "TCP port the agent listens on")
	client := fs.String("client", "ctl", "name of the controller's client certificate in --certs, made if missing")
	days := fs.Int("days", 365, "days the certificates made are valid")
	t, err := parseTarget(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := s.check(); err != nil {
		return err
	}
	if *days <= 0 {
		return usagef("--days %d: must be positive", *days)
	}
	if *port < 1 || *port > 65535 {
		return usagef("--port %d: want 1 to 65535", *port)
	}
	c, err := s.dial(ctx, t, stdout)
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := deploy.Install(ctx, c, deploy.InstallOptions{
		AgentBinary: *binary,
		CertsDir:    s.certs,
		Client:      *client,
		Validity:    time.Duration(*days) * 24 * time.Hour,
		Port:        *port,
		Pool:        s.pool,
		Name:        s.name,
		Log:         stdout,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed: host %s, agent %s; check it with: lnst pool check %s\n", h.Name, h.Agent, s.pool)
	return nil
}

// uninstall removes the agent from user@host over SSH; with --forget, only
// the host's pool entry and certificate here, without logging in.
func uninstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s sshFlags
	fs := newFlags("uninstall")
	s.register(fs)
	forget := fs.Bool("forget", false, "do not log in: only remove the host from --pool and its certificate from --certs, for a machine that is gone (what lnst-agent left on it stays)")
	t, err := parseTarget(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := s.check(); err != nil {
		return err
	}
	o := deploy.UninstallOptions{CertsDir: s.certs, Pool: s.pool, Name: s.name, Log: stdout}
	if *forget {
		if err := deploy.Forget(t, o); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "forgotten: %s is no longer in %s; nothing on the machine was touched\n", t, s.pool)
		return nil
	}
	c, err := s.dial(ctx, t, stdout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := deploy.Uninstall(ctx, c, o); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uninstalled: nothing of lnst-agent is left on %s\n", t)
	return nil
}
