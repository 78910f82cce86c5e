// Command lnst-agent serves the lnst-go agent on this machine, and makes
// the certificates agents and controllers use across machines.
//
//	lnst-agent serve --listen unix:///run/lnst-agent.sock
//	lnst-agent serve --listen unix:///run/lnst-agent.sock --journal /var/lib/lnst-agent/journal
//	lnst-agent serve --listen 198.18.0.5:7000 --ca ca.pem --cert 198.18.0.5.pem --key 198.18.0.5-key.pem
//	lnst-agent certs --dir certs --host 198.18.0.5,198.18.0.6 --client ctl
//	lnst-agent install --pool lab.yaml root@198.18.0.5
//	lnst-agent uninstall --pool lab.yaml root@198.18.0.5
//	lnst-agent version
//
// install copies this binary (or --agent-binary) to a machine over SSH,
// runs it there with a certificate from the pool's CA (as the lnst-agent
// systemd unit, or detached with a pid file where the machine has no
// systemd), and adds the machine to the pool file; uninstall removes all
// of it (package internal/deploy), and uninstall --forget only the pool
// entry and certificate, without logging in, for a machine that is gone.
//
// Over TCP the agent requires mutual TLS unless --insecure is given, which
// is allowed on loopback addresses only (127.0.0.0/8, ::1, localhost);
// plain TCP on any other address needs --insecure-any-address. On a unix
// socket it serves its own user only: the socket is made mode 0600 and
// every connection's peer uid (SO_PEERCRED) must be the agent's. On
// SIGINT or SIGTERM it undoes every change it journaled, kills its jobs
// and exits, non-zero if something could not be undone.
//
// The journal of changes to undo is also kept on disk, in --journal
// (default $STATE_DIRECTORY/journal when systemd sets STATE_DIRECTORY,
// else /var/lib/lnst-agent/journal; --journal "" keeps it in memory only).
// An agent killed before it could undo its changes leaves them there, and
// the next agent started with that journal undoes them before it serves,
// and before it loads its TLS files: an expired or broken certificate
// stops it from serving, not from undoing.
// Each agent counts its starts beside the journal (<journal>.starts) and
// numbers the jobs of start n from n*100000+1, so job ids stay unique
// across reboots. Two agents cannot share a journal: the second refuses
// to start. A
// journal corrupt in its middle (not merely torn by a crash) stops the
// agent from starting unless --journal-skip-corrupt is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/lnst-go/lnst/internal/peercred"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

const usage = `usage:
  lnst-agent serve --listen unix:///PATH | HOST:PORT [--ca F --cert F --key F] [--insecure | --insecure-any-address] [--log-level L] [--lease-ttl D] [--output-cap BYTES] [--output-budget BYTES]
                   [--journal PATH | --journal ""] [--journal-skip-corrupt]
  lnst-agent certs --dir DIR --host NAME[,NAME...] [--client NAME[,NAME...]] [--days N]
  lnst-agent install --pool FILE [--certs DIR] [--identity KEY] [--known-hosts FILE] [--accept-new-host-key]
                     [--agent-binary PATH] [--port N] [--name NAME] [--client NAME] [--days N] user@host
  lnst-agent uninstall --pool FILE [--certs DIR] [--identity KEY] [--known-hosts FILE] [--accept-new-host-key] [--name NAME] [--forget] user@host
  lnst-agent version`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode reports err on stderr and returns the exit status for it.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "lnst-agent: %v\n%s\n", err, usage)
		return 2
	}
	fmt.Fprintf(stderr, "lnst-agent: %v\n", err)
	return 1
}

// run runs the command line args; serve runs until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "certs":
		return certs(args[1:], stdout, stderr)
	case "install":
		return install(ctx, args[1:], stdout, stderr)
	case "uninstall":
		return uninstall(ctx, args[1:], stdout, stderr)
	case "version":
		if len(args) > 1 {
			return usagef("version takes no arguments")
		}
		fmt.Fprintf(stdout, "lnst-agent %s\n", agent.Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usagef("unknown command %q", args[0])
}

// newFlags makes the flag set of a command. It prints nothing itself:
// parse errors are reported once, by exitCode.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("lnst-agent "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args, turning errors into usage errors; -h prints the
// command's flags on stderr.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage of %s:\n", fs.Name())
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// serveConfig is what serve's flags ask for.
type serveConfig struct {
	listen, ca, cert, key string
	insecure, anyAddress  bool
	level                 hclog.Level
	leaseTTL              time.Duration
	journal               string
	skipCorrupt           bool
	outputCap, budget     int64
}

// defaultJournal is where the agent keeps its journal unless told: the
// state directory systemd gives the service (StateDirectory=), or
// /var/lib/lnst-agent.
func defaultJournal() string {
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return filepath.Join(d, "journal")
	}
	return "/var/lib/lnst-agent/journal"
}

// parseServe checks serve's flags.
func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := newFlags("serve")
	fs.StringVar(&c.listen, "listen", "", "where to listen: unix:///PATH or HOST:PORT")
	fs.StringVar(&c.ca, "ca", "", "CA certificate that signed the controllers' certificates (TCP)")
	fs.StringVar(&c.cert, "cert", "", "this agent's certificate (TCP)")
	fs.StringVar(&c.key, "key", "", "this agent's private key (TCP)")
	fs.BoolVar(&c.insecure, "insecure", false, "serve TCP without TLS on a loopback address (127.0.0.0/8, ::1, localhost): anyone on this machine who reaches the port runs commands as this user")
	fs.BoolVar(&c.anyAddress, "insecure-any-address", false, "serve TCP without TLS on any address, not only loopback: anyone who reaches the port from anywhere runs commands as this user")
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&c.journal, "journal", defaultJournal(), "file of the undo journal, taken back at start if a previous agent left changes in it; \"\" keeps it in memory only")
	fs.BoolVar(&c.skipCorrupt, "journal-skip-corrupt", false, "start even if the journal is corrupt in its middle, skipping the bad records (their changes stay)")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", agent.DefaultLeaseTTL, "how long a controller's session lives without a heartbeat; then the agent kills its jobs and undoes its changes")
	fs.Int64Var(&c.outputCap, "output-cap", agent.DefaultOutputCap, "bytes kept of each of a job's stdout and stderr; of a job that writes more, the last bytes are kept and the job's result says truncated")
	fs.Int64Var(&c.budget, "output-budget", agent.DefaultOutputBudget, "bytes of job output the agent keeps of all its jobs together; past it, a job that writes keeps only its last MiB")
	if err := parse(fs, args, stderr); err != nil {
		return c, err
	}
	if c.outputCap <= 0 {
		return c, usagef("--output-cap %d: must be a positive number of bytes", c.outputCap)
	}
	if c.budget < c.outputCap {
		return c, usagef("--output-budget %d: must be at least --output-cap (%d)", c.budget, c.outputCap)
	}
	c.insecure = c.insecure || c.anyAddress
	if c.leaseTTL <= 0 {
		return c, usagef("--lease-ttl %v: must be positive", c.leaseTTL)
	}
	if c.level = hclog.LevelFromString(*level); c.level == hclog.NoLevel {
		return c, usagef("--log-level: unknown level %q (want trace, debug, info, warn or error)", *level)
	}
	if c.listen == "" {
		return c, usagef("--listen is required (unix:///PATH or HOST:PORT)")
	}
	network, _, err := agentconn.ParseAddr(c.listen)
	if err != nil {
		return c, usagef("--listen: %w", err)
	}
	tlsFlags := c.ca != "" || c.cert != "" || c.key != ""
	switch {
	case network == "unix" && (tlsFlags || c.insecure):
		return c, usagef("--listen %s is a unix socket: its file permissions and a check of each peer's uid guard it; --ca, --cert, --key and --insecure are for TCP", c.listen)
	case network == "unix":
		return c, nil
	case c.insecure && tlsFlags:
		return c, usagef("--insecure turns TLS off: give it without --ca, --cert and --key")
	case c.insecure && !c.anyAddress && !agentconn.LoopbackAddr(c.listen):
		return c, usagef("--insecure --listen %s: %s is not a loopback address (127.0.0.0/8, ::1, localhost): whoever reaches it would run commands as this user without TLS; give --ca, --cert and --key, or --insecure-any-address to serve plain TCP there anyway", c.listen, c.listen)
	case c.insecure:
		return c, nil
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"--ca", c.ca}, {"--cert", c.cert}, {"--key", c.key}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return c, usagef("--listen %s is TCP: it needs mutual TLS (--ca, --cert and --key; missing %s) or --insecure", c.listen, strings.Join(missing, ", "))
	}
	return c, nil
}

// serve serves the agent until ctx ends, then undoes every change.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "lnst-agent", Level: c.level, Output: agent.LogOutput(stderr)})
	// The server takes back what a previous agent left in the journal
	// first: an agent whose certificate expired or broke must still
	// undo it, and then fail.
	srv, err := agent.NewServer(agent.Options{Logger: log, LeaseTTL: c.leaseTTL, JournalPath: c.journal, JournalSkipCorrupt: c.skipCorrupt,
		OutputCap: c.outputCap, OutputBudget: c.budget})
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	if c.ca != "" {
		cfg, err := agentconn.ServerTLS(c.ca, c.cert, c.key)
		if err != nil {
			srv.Shutdown()
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	lis, err := agentconn.Listen(c.listen)
	if err != nil {
		srv.Shutdown()
		return err
	}
	if network, _, _ := agentconn.ParseAddr(c.listen); network == "unix" {
		// The socket is 0600; the peer check holds even if its mode or
		// owner is changed to let others reach the file.
		lis = peercred.Restrict(lis, os.Geteuid(), func(r peercred.Refusal) {
			log.Warn("refused a connection from another user", "pid", r.PID, "uid", r.UID, "reason", r.Reason)
		})
	}
	g := grpc.NewServer(append(opts, srv.ServerOptions()...)...)
	srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	switch {
	case c.anyAddress:
		log.Warn("serving TCP without TLS on any address (--insecure-any-address): anyone who reaches the port, from any machine, runs commands here", "listen", c.listen)
	case c.insecure:
		log.Warn("serving TCP without TLS on a loopback address (--insecure): anyone on this machine who reaches the port runs commands here", "listen", c.listen)
	}
	log.Info("serving", "listen", c.listen, "tls", c.ca != "", "version", agent.Version)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: restoring every change")
	case serveErr = <-served:
		log.Error("serving failed: restoring every change", "error", serveErr)
	}
	return stop(g, srv, serveErr)
}

// stop stops serving and undoes everything (agent.Server.Stop).
func stop(g *grpc.Server, srv *agent.Server, serveErr error) error {
	if errs := srv.Stop(g); len(errs) > 0 {
		return fmt.Errorf("restore: %w", errors.Join(errs...))
	}
	return serveErr
}

// certs generates certificates for a pool of machines.
func certs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("certs")
	dir := fs.String("dir", "", "directory to write ca.pem and the certificates in; a CA already there is reused")
	hosts := fs.String("host", "", "comma-separated agent names: IP addresses or DNS names, as controllers dial them")
	clients := fs.String("client", "", "comma-separated controller names")
	days := fs.Int("days", 365, "days the certificates are valid")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *dir == "":
		return usagef("--dir is required")
	case *hosts == "" && *clients == "":
		return usagef("--host or --client is required: there is nothing to generate")
	case *days <= 0:
		return usagef("--days %d: must be positive", *days)
	}
	h, cl := splitList(*hosts), splitList(*clients)
	validity := time.Duration(*days) * 24 * time.Hour
	end, cut, err := agentconn.CAEndsBefore(*dir, validity)
	if err != nil {
		return err
	}
	if err := agentconn.GenerateCerts(*dir, h, cl, validity); err != nil {
		return err
	}
	if cut {
		fmt.Fprintf(stderr, "lnst-agent: warning: the CA in %s ends %s, before the %d days asked: the new certificates end with it (remove %s and %s to make a new CA, then every certificate anew)\n",
			*dir, end.UTC().Format(time.DateTime+" UTC"), *days, agentconn.CAFile, agentconn.CAKeyFile)
	}
	for _, name := range append(h, cl...) {
		fmt.Fprintf(stdout, "%s %s\n", filepath.Join(*dir, name+".pem"), filepath.Join(*dir, name+"-key.pem"))
	}
	// The CA's key makes certificates every agent of the pool trusts: it
	// is the one file no machine may get, and it sits in a directory
	// users copy from.
	fmt.Fprintf(stderr, "lnst-agent: %s is the CA's key: it stays on this controller; copy it to no machine (a machine gets %s and its own certificate and key)\n",
		filepath.Join(*dir, agentconn.CAKeyFile), filepath.Join(*dir, agentconn.CAFile))
	return nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
