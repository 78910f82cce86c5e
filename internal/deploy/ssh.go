package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Target is the machine to install on, as user@host[:port] names it.
type Target struct {
	User string
	Host string // an IP address or a DNS name, without brackets
	Port int    // 22 unless given
}

// ParseTarget parses user@host, user@host:port or user@[ipv6]:port.
func ParseTarget(s string) (Target, error) {
	user, hostport, ok := strings.Cut(s, "@")
	if !ok || user == "" {
		return Target{}, fmt.Errorf("target %q: want user@host (the user must be root)", s)
	}
	t := Target{User: user, Host: hostport, Port: 22}
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, fmt.Errorf("target %q: bad port %q: want 1 to 65535", s, p)
		}
		t.Host, t.Port = h, n
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		t.Host = hostport[1 : len(hostport)-1]
	}
	if t.Host == "" || strings.ContainsAny(t.Host, " \t\n/[]@'\"\\") {
		return Target{}, fmt.Errorf("target %q: bad host %q", s, t.Host)
	}
	if strings.Contains(t.Host, ":") && net.ParseIP(t.Host) == nil {
		return Target{}, fmt.Errorf("target %q: bad host %q: write an IPv6 address as user@[addr] or user@[addr]:port", s, t.Host)
	}
	return t, nil
}

// Addr is the host and port to dial.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

func (t Target) String() string {
	if t.Port == 22 {
		if strings.Contains(t.Host, ":") {
			return t.User + "@[" + t.Host + "]"
		}
		return t.User + "@" + t.Host
	}
	return t.User + "@" + t.Addr()
}

// SSHConfig says how to log in to a Target and how to check it is the
// machine it claims to be.
type SSHConfig struct {
	// Identity is a private key file (OpenSSH or PEM format, without a
	// passphrase). Empty: the keys of the SSH agent at AgentSocket.
	Identity string
	// AgentSocket is the SSH agent's socket; empty: $SSH_AUTH_SOCK.
	AgentSocket string
	// KnownHosts is the known_hosts file the host key is checked against.
	KnownHosts string
	// AcceptNewHostKey appends the key of a host that KnownHosts does not
	// list yet (creating the file if needed). A key that differs from a
	// listed one is refused all the same.
	AcceptNewHostKey bool
	// Timeout bounds the TCP connection and the SSH handshake; zero: 15s.
	Timeout time.Duration
	// Log receives one line per notable event (a host key added); nil
	// discards them.
	Log io.Writer
}

// Conn is an SSH connection to a Target.
type Conn struct {
	target Target
	client *ssh.Client
}

// Close closes the connection.
func (c *Conn) Close() error { return c.client.Close() }

// Dial connects and logs in to t over SSH, checking its host key.
func Dial(ctx context.Context, t Target, cfg SSHConfig) (*Conn, error) {
	if cfg.KnownHosts == "" {
		return nil, errors.New("ssh: no known_hosts file given")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	auth, closeAuth, err := authMethod(cfg)
	if err != nil {
		return nil, err
	}
	defer closeAuth()
	hk, err := newHostKeyChecker(cfg.KnownHosts, cfg.AcceptNewHostKey, cfg.Log)
	if err != nil {
		return nil, err
	}

	d := net.Dialer{}
	tcp, err := d.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t, err)
	}
	algos := hk.algorithms(t.Addr(), tcp.RemoteAddr())
	conf := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{auth},
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
	}
	// The handshake is bounded by ctx: closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(tcp, t.Addr(), conf)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, fmt.Errorf("ssh %s: no answer within %v", t, timeout)
	}
	if err != nil {
		tcp.Close()
		if algos != nil && strings.Contains(err.Error(), "no common algorithm for host key") {
			return nil, fmt.Errorf("ssh %s: HOST KEY MISMATCH: known_hosts file %s has only %s keys for it, and the server offers none of them: "+
				"the host was reinstalled, or someone is intercepting the connection: %w", t, cfg.KnownHosts, strings.Join(algos, ", "), err)
		}
		return nil, explainDialError(t, cfg, hk, err)
	}
	return &Conn{target: t, client: ssh.NewClient(sc, chans, reqs)}, nil
}

// explainDialError turns a handshake error into one naming what to do.
func explainDialError(t Target, cfg SSHConfig, hk *hostKeyChecker, err error) error {
	if hk.err != nil {
		return fmt.Errorf("ssh %s: %w", t, hk.err)
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		key := "the keys of the SSH agent"
		if cfg.Identity != "" {
			key = "key file " + cfg.Identity
		}
		return fmt.Errorf("ssh %s: login as %s refused with %s: %w", t, t.User, key, err)
	}
	return fmt.Errorf("ssh %s: %w", t, err)
}

// authMethod is public-key authentication with the identity file or the
// SSH agent's keys; the returned func closes the agent connection.
func authMethod(cfg SSHConfig) (ssh.AuthMethod, func(), error) {
	if cfg.Identity != "" {
		data, err := os.ReadFile(cfg.Identity)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh identity file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(data)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, nil, fmt.Errorf("ssh identity file %s: the key has a passphrase: load it into the SSH agent (ssh-add %s) and give no --identity", cfg.Identity, cfg.Identity)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("ssh identity file %s: not a private key: %w", cfg.Identity, err)
		}
		return ssh.PublicKeys(signer), func() {}, nil
	}
	sock := cfg.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock == "" {
		return nil, nil, errors.New("ssh: no key: give --identity FILE, or run an SSH agent (SSH_AUTH_SOCK is not set)")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh agent at %s (SSH_AUTH_SOCK): %w", sock, err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err == nil && len(signers) == 0 {
		err = errors.New("it holds no key: add one with ssh-add, or give --identity FILE")
	}
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ssh agent at %s (SSH_AUTH_SOCK): %w", sock, err)
	}
	return ssh.PublicKeys(signers...), func() { conn.Close() }, nil
}

// Run runs the shell command line cmd on the host with stdin (nil: none)
// and returns its standard output. A command that fails is an error
// naming the host, the command, its exit status and its standard error.
func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader) (string, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return "", fmt.Errorf("%s: open a session for %q: %w", c.target, cmd, err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Signal(ssh.SIGKILL)
		s.Close()
		<-done
		return "", fmt.Errorf("%s: %q: %w", c.target, cmd, ctx.Err())
	}
	if err != nil {
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("exit status %d", ee.ExitStatus())
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return stdout.String(), fmt.Errorf("%s: %q: %w: %s", c.target, cmd, err, msg)
		}
		return stdout.String(), fmt.Errorf("%s: %q: %w", c.target, cmd, err)
	}
	return stdout.String(), nil
}

// WriteFile writes the content of r to path on the host with mode,
// through a temporary file next to it, so that path is either the old
// file or the whole new one, and never readable by others meanwhile.
func (c *Conn) WriteFile(ctx context.Context, path string, r io.Reader, mode os.FileMode) error {
	tmp := shellQuote(path + ".lnst-tmp")
	cmd := fmt.Sprintf("umask 077 && cat > %s && chmod %04o %s && mv -f %s %s || { rm -f %s; exit 1; }",
		tmp, mode.Perm(), tmp, tmp, shellQuote(path), tmp)
	if _, err := c.Run(ctx, cmd, r); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
