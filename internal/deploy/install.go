package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
)

// DefaultPort is the TCP port the installed agent listens on.
const DefaultPort = 7000

// InstallOptions configure Install.
type InstallOptions struct {
	// AgentBinary is the lnst-agent executable to copy; it must be built
	// for the host's architecture. Empty: this process's executable.
	AgentBinary string
	// CertsDir is the controller's certificate directory: its CA (made
	// if missing) signs the agent's certificate, and the controller's
	// client certificate is made there if missing.
	CertsDir string
	// Client is the name of the controller's client certificate
	// (<Client>.pem in CertsDir); empty: "ctl".
	Client string
	// Validity of the certificates made; zero: a year.
	Validity time.Duration
	// Port the agent listens on (on every address); zero: DefaultPort.
	Port int
	// Pool is the pool file the host is appended to, created if missing.
	Pool string
	// Name of the host in the pool file; empty: the target's host.
	Name string
	// layout of the files on the host; zero: defaultLayout.
	layout layout
	// Log receives a line per step; nil discards them.
	Log io.Writer
}

// UninstallOptions configure Uninstall.
type UninstallOptions struct {
	// CertsDir is the controller's certificate directory: the host's
	// certificate and key are removed from it (the CA and the client
	// certificate stay, other hosts use them).
	CertsDir string
	// Pool is the pool file the host is removed from; empty: none.
	Pool string
	// Name of the host in the pool file; empty: the target's host.
	Name string
	// layout of the files on the host; zero: defaultLayout.
	layout layout
	// Log receives a line per step; nil discards them.
	Log io.Writer
}

func (o *InstallOptions) defaults(t Target) error {
	if o.Client == "" {
		o.Client = "ctl"
	}
	if o.Validity == 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Name == "" {
		o.Name = t.Host
	}
	if o.layout == (layout{}) {
		o.layout = defaultLayout
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	switch {
	case o.CertsDir == "":
		return errors.New("install: no certificate directory given")
	case o.Pool == "":
		return errors.New("install: no pool file given")
	case o.Port < 1 || o.Port > 65535:
		return fmt.Errorf("install: port %d: want 1 to 65535", o.Port)
	}
	if o.AgentBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("install: find this executable to copy: %w (give --agent-binary)", err)
		}
		o.AgentBinary = exe
	}
	return o.layout.check()
}

func (o *UninstallOptions) defaults(t Target) {
	if o.Name == "" {
		o.Name = t.Host
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// hostFacts is what Install learns of the host first.
type hostFacts struct {
	machine  string   // uname -m
	uid      string   // id -u
	systemd  bool     // systemd is the init system
	existing []string // paths of layout that exist
	ifaces   []string // "name hwaddr driver" of each physical interface
}

// facts asks the host what Install needs to know, in one command.
func facts(ctx context.Context, c *Conn, l layout) (hostFacts, error) {
	var cmd strings.Builder
	cmd.WriteString(`uname -m; id -u; if [ -d /run/systemd/system ]; then echo systemd; else echo none; fi; `)
	for _, p := range l.Paths() {
		fmt.Fprintf(&cmd, "if [ -e %s ] || [ -L %s ]; then echo exists %s; fi; ", shellQuote(p), shellQuote(p), shellQuote(p))
	}
	cmd.WriteString(`for d in /sys/class/net/*; do [ -e "$d/device" ] || continue; ` +
		`drv=$(readlink "$d/device/driver"); echo "iface ${d##*/} $(cat "$d/address") ${drv##*/}"; done; true`)
	out, err := c.Run(ctx, cmd.String(), nil)
	if err != nil {
		return hostFacts{}, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 {
		return hostFacts{}, fmt.Errorf("%s: unexpected answer to uname, id and the systemd check: %q", c.target, out)
	}
	f := hostFacts{machine: lines[0], uid: lines[1], systemd: lines[2] == "systemd"}
	for _, l := range lines[3:] {
		if p, ok := strings.CutPrefix(l, "exists "); ok {
			f.existing = append(f.existing, p)
		} else if i, ok := strings.CutPrefix(l, "iface "); ok {
			f.ifaces = append(f.ifaces, i)
		}
	}
	return f, nil
}

// Install installs the agent on the host of c, starts it, checks it
// answers over mutual TLS, and appends the host to the pool file. On a
// failure after it started changing the host, it undoes what it did
// (as Uninstall does) and returns the error. It returns the pool host.
func Install(ctx context.Context, c *Conn, o InstallOptions) (*pool.Host, error) {
	t := c.target
	if err := o.defaults(t); err != nil {
		return nil, err
	}
	l := o.layout
	agentAddr := net.JoinHostPort(t.Host, strconv.Itoa(o.Port))
	// Check the pool file first: nothing is done for a host it cannot take.
	poolData, err := readPool(o.Pool)
	if err != nil {
		return nil, err
	}
	if err := checkNotInPool(o.Pool, poolData, o.Name, agentAddr); err != nil {
		return nil, err
	}
	f, err := facts(ctx, c, l)
	if err != nil {
		return nil, err
	}
	if f.uid != "0" {
		return nil, fmt.Errorf("%s: logged in as uid %s: the agent is installed as root, log in as root@%s", t, f.uid, t.Host)
	}
	if len(f.existing) > 0 {
		return nil, fmt.Errorf("%s: lnst-agent is installed already (%s exists): run lnst-agent uninstall %s first", t, strings.Join(f.existing, ", "), t)
	}
	if err := checkArch(t.Host, f.machine, o.AgentBinary); err != nil {
		return nil, err
	}
	if dynamicallyLinked(o.AgentBinary) {
		fmt.Fprintf(o.Log, "note: %s is dynamically linked (built with cgo): the host needs a C library as new as this machine's; "+
			"`CGO_ENABLED=0 go build ./cmd/lnst-agent` builds one that runs anywhere\n", o.AgentBinary)
	}
	mode := "no systemd: a detached process with pid file " + l.PidFile
	if f.systemd {
		mode = "systemd unit " + l.UnitName()
	}
	fmt.Fprintf(o.Log, "%s: %s, %s\n", t, f.machine, mode)

	if err := makeCerts(o.CertsDir, t.Host, o.Client, o.Validity, o.Log); err != nil {
		return nil, err
	}
	host, err := install(ctx, c, o, f, agentAddr)
	if err == nil {
		return host, nil
	}
	fmt.Fprintf(o.Log, "%s: install failed, removing what it made: %v\n", t, err)
	// Undo even when ctx ended (Ctrl-C): that is what failed, most likely.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	uerr := uninstallHost(uctx, c, l, o.Log)
	removeHostCerts(o.CertsDir, t.Host)
	if uerr != nil {
		return nil, errors.Join(err, fmt.Errorf("and undoing the install failed too: %w", uerr))
	}
	return nil, err
}

// install does the steps that change the host.
func install(ctx context.Context, c *Conn, o InstallOptions, f hostFacts, agentAddr string) (*pool.Host, error) {
	t, l := c.target, o.layout
	if _, err := c.Run(ctx, "umask 077 && mkdir -p "+shellQuote(l.ConfigDir)+" && chmod 0700 "+shellQuote(l.ConfigDir), nil); err != nil {
		return nil, err
	}
	tf := tlsFiles(o.CertsDir, t.Host)
	certFiles := []struct{ local, remote string }{
		{tf.CA, remoteCAFile},
		{tf.Cert, remoteCertFile},
		{tf.Key, remoteKeyFile},
	}
	for _, cf := range certFiles {
		if err := copyFile(ctx, c, cf.local, path.Join(l.ConfigDir, cf.remote), 0o600); err != nil {
			return nil, err
		}
	}
	if err := copyFile(ctx, c, o.AgentBinary, l.Binary, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "%s: copied %s to %s and the agent's certificate to %s\n", t, o.AgentBinary, l.Binary, l.ConfigDir)
	if err := start(ctx, c, l, o.Port, f.systemd); err != nil {
		return nil, err
	}
	hello, err := waitAgent(ctx, agentAddr, o.CertsDir, o.Client)
	if err != nil {
		return nil, fmt.Errorf("the agent started but does not answer: %w%s", err, agentLog(ctx, c, l, f.systemd))
	}
	fmt.Fprintf(o.Log, "%s: agent %s answers on %s (kernel %s, %s)\n", t, hello.Version, agentAddr, hello.Kernel, hello.Arch)

	e := pool.HostEntry{
		Name:    o.Name,
		Agent:   agentAddr,
		TLS:     poolTLS(o.Pool, o.CertsDir, o.Client),
		Arch:    hello.Arch,
		Comment: fmt.Sprintf("%s %s, %s", marker, t, time.Now().UTC().Format(time.DateOnly)),
		Notes:   ifaceNotes(f.ifaces),
	}
	// Read the pool file again: it may have changed while installing.
	poolData, err := readPool(o.Pool)
	if err != nil {
		return nil, err
	}
	out, err := appendHost(o.Pool, poolData, e)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(o.Pool, out); err != nil {
		return nil, err
	}
	p, err := pool.Parse(o.Pool, out)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "%s: added host %q to pool file %s\n", t, o.Name, o.Pool)
	h := p.Hosts[len(p.Hosts)-1]
	return &h, nil
}

// start starts the agent: with systemd, or detached.
func start(ctx context.Context, c *Conn, l layout, port int, systemd bool) error {
	if !systemd {
		_, err := c.Run(ctx, l.detachedStart(port), nil)
		return err
	}
	if err := c.WriteFile(ctx, l.Unit, strings.NewReader(l.UnitText(port)), 0o644); err != nil {
		return err
	}
	_, err := c.Run(ctx, "systemctl daemon-reload && systemctl enable --now "+shellQuote(l.UnitName()), nil)
	return err
}

// agentLog is the end of the agent's log, to explain a failure.
func agentLog(ctx context.Context, c *Conn, l layout, systemd bool) string {
	cmd := "tail -n 20 " + shellQuote(l.LogFile)
	if systemd {
		cmd = "journalctl -q --no-pager -n 20 -u " + shellQuote(l.UnitName()) + " 2>&1 || systemctl status --no-pager " + shellQuote(l.UnitName())
	}
	out, err := c.Run(ctx, cmd, nil)
	if err != nil || strings.TrimSpace(out) == "" {
		return ""
	}
	return "; the agent's log:\n" + out
}

// waitAgent dials the agent with the controller's certificate until it
// answers a Hello.
func waitAgent(ctx context.Context, addr, certsDir, client string) (*pb.HelloReply, error) {
	tf := tlsFiles(certsDir, client)
	cfg, err := agentconn.ClientTLS(tf.CA, tf.Cert, tf.Key)
	if err != nil {
		return nil, err
	}
	conn, err := agentconn.Dial(ctx, addr, agentconn.DialOptions{TLS: cfg, Timeout: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return pb.NewAgentClient(conn).Hello(ctx, &pb.HelloRequest{})
}

// Uninstall stops the agent on the host of c (it undoes its changes as
// it stops), removes every path of the layout there, the host's
// certificate from the certificate directory and the host from the pool
// file (the file itself when no host is left in it and it holds nothing
// but what Install wrote). It does what it can when the agent is only
// partly installed, and checks nothing is left.
func Uninstall(ctx context.Context, c *Conn, o UninstallOptions) error {
	t := c.target
	o.defaults(t)
	if o.layout == (layout{}) {
		o.layout = defaultLayout
	}
	if err := o.layout.check(); err != nil {
		return err
	}
	if err := checkCertsHost(t, o.CertsDir); err != nil {
		return err
	}
	if err := uninstallHost(ctx, c, o.layout, o.Log); err != nil {
		return err
	}
	if o.CertsDir != "" {
		if err := removeHostCerts(o.CertsDir, t.Host); err != nil {
			return err
		}
	}
	if o.Pool == "" {
		return nil
	}
	return removeFromPool(o.Pool, o.Name, false, o.Log)
}

// Forget removes what the controller's side holds of the host t: its entry
// in o.Pool and its certificate in o.CertsDir. It does not log in, so it
// works for a machine that is gone or cannot be reached; whatever
// lnst-agent left on the machine itself stays there (Uninstall removes it).
// A pool file without the host is an error: forgetting is all it does.
func Forget(t Target, o UninstallOptions) error {
	o.defaults(t)
	if o.Pool == "" {
		return fmt.Errorf("forget %s: no pool file given", t)
	}
	if err := checkCertsHost(t, o.CertsDir); err != nil {
		return err
	}
	if err := removeFromPool(o.Pool, o.Name, true, o.Log); err != nil {
		return err
	}
	if o.CertsDir != "" {
		if err := removeHostCerts(o.CertsDir, t.Host); err != nil {
			return err
		}
		fmt.Fprintf(o.Log, "removed the certificate of %s from %s\n", t.Host, o.CertsDir)
	}
	return nil
}

// checkCertsHost checks, before anything is removed, that the host's
// certificate in certs (when given) has a name of its own: uninstalling
// root@ca must not remove the CA.
func checkCertsHost(t Target, certs string) error {
	if certs == "" {
		return nil
	}
	if err := agentconn.CheckCertName(t.Host); err != nil {
		return fmt.Errorf("%s: its certificate in %s: %w", t, certs, err)
	}
	return nil
}

// uninstallHost stops the agent and removes the layout's paths.
func uninstallHost(ctx context.Context, c *Conn, l layout, log io.Writer) error {
	t := c.target
	f, err := facts(ctx, c, l)
	if err != nil {
		return err
	}
	if f.uid != "0" {
		return fmt.Errorf("%s: logged in as uid %s: log in as root@%s to uninstall", t, f.uid, t.Host)
	}
	unit := f.systemd && slices.Contains(f.existing, l.Unit)
	if unit {
		// disable --now stops the agent; its journal is undone as it stops.
		if _, err := c.Run(ctx, "systemctl disable --now "+shellQuote(l.UnitName()), nil); err != nil {
			return err
		}
		fmt.Fprintf(log, "%s: stopped and disabled %s\n", t, l.UnitName())
	}
	if slices.Contains(f.existing, l.PidFile) {
		if err := stopDetached(ctx, c, l); err != nil {
			return err
		}
		fmt.Fprintf(log, "%s: stopped the agent of %s\n", t, l.PidFile)
	}
	var rm []string
	for _, p := range l.Paths() {
		rm = append(rm, shellQuote(p))
	}
	cmd := "rm -rf -- " + strings.Join(rm, " ")
	if unit {
		cmd += " && systemctl daemon-reload && { systemctl reset-failed " + shellQuote(l.UnitName()) + " 2>/dev/null; true; }"
	}
	if _, err := c.Run(ctx, cmd, nil); err != nil {
		return err
	}
	after, err := facts(ctx, c, l)
	if err != nil {
		return err
	}
	if len(after.existing) > 0 {
		return fmt.Errorf("%s: uninstall left %s", t, strings.Join(after.existing, ", "))
	}
	if len(f.existing) > 0 {
		fmt.Fprintf(log, "%s: removed %s\n", t, strings.Join(f.existing, ", "))
	}
	return nil
}

// stopDetached stops the agent started without systemd: SIGTERM, and
// SIGKILL if it has not exited after 60s. The pid is signalled only if it
// runs the layout's binary, so a stale pid file kills nothing else.
func stopDetached(ctx context.Context, c *Conn, l layout) error {
	script := `pid=$(cat PIDFILE) || exit 1
exe=$(readlink /proc/$pid/exe 2>/dev/null) || exit 0
case "$exe" in BINARY|"BINARY (deleted)") ;; *) exit 0;; esac
kill -TERM "$pid" || exit 0
i=0
while [ -e /proc/$pid ] && [ "$(readlink /proc/$pid/exe 2>/dev/null)" = "$exe" ]; do
	i=$((i+1))
	if [ $i -ge 600 ]; then kill -KILL "$pid"; echo "agent $pid did not exit within 60s of SIGTERM: killed" >&2; exit 0; fi
	sleep 0.1
done`
	script = strings.NewReplacer("PIDFILE", shellQuote(l.PidFile), "BINARY", l.Binary).Replace(script)
	_, err := c.Run(ctx, script, nil)
	return err
}

// removeFromPool removes the host named name from the pool file. With
// mustFind, a missing file or host is an error; else it is logged.
func removeFromPool(file, name string, mustFind bool, log io.Writer) error {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && !mustFind {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pool file: %w", err)
	}
	out, found, left, err := removeHost(file, data, name)
	if err != nil {
		return err
	}
	if !found {
		if mustFind {
			return fmt.Errorf("pool file %s has no host %q (give its name in the pool file with --name)", file, name)
		}
		fmt.Fprintf(log, "pool file %s has no host %q\n", file, name)
		return nil
	}
	if !left && onlyHeader(out) {
		if err := os.Remove(file); err != nil {
			return fmt.Errorf("pool file: %w", err)
		}
		fmt.Fprintf(log, "removed host %q from pool file %s, and the file: no host is left\n", name, file)
		return nil
	}
	if err := writeFileAtomic(file, out); err != nil {
		return err
	}
	if !left {
		fmt.Fprintf(log, "removed host %q from pool file %s: no host is left in it\n", name, file)
		return nil
	}
	fmt.Fprintf(log, "removed host %q from pool file %s\n", name, file)
	return nil
}

// readPool reads the pool file; a missing file is empty.
func readPool(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pool file: %w", err)
	}
	return data, nil
}

// checkNotInPool refuses a host whose name or agent address the pool
// file has already.
func checkNotInPool(file string, data []byte, name, agent string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	p, err := pool.Parse(file, data)
	if err != nil {
		return fmt.Errorf("pool file %s: %w: fix it before adding a host", file, err)
	}
	for _, h := range p.Hosts {
		switch {
		case h.Name == name:
			return fmt.Errorf("pool file %s:%d: has a host named %q already: give another --name, or uninstall it first", file, h.Line, name)
		case h.Agent == agent:
			return fmt.Errorf("pool file %s:%d: host %q has agent %s already: uninstall it first", file, h.Line, h.Name, agent)
		}
	}
	return nil
}

// poolTLS are the TLS paths as the pool file names them: relative to
// its directory when the certificates are under it.
func poolTLS(poolFile, certsDir, client string) pool.TLSFiles {
	dir := certsDir
	if abs, err := filepath.Abs(certsDir); err == nil {
		dir = abs
	}
	if base, err := filepath.Abs(filepath.Dir(poolFile)); err == nil {
		if rel, err := filepath.Rel(base, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			dir = rel
		}
	}
	return tlsFiles(dir, client)
}

// tlsFiles are the CA and the client's certificate and key in dir, as
// agentconn.GenerateCerts names them.
func tlsFiles(dir, client string) pool.TLSFiles {
	return pool.TLSFiles{
		CA:   filepath.Join(dir, agentconn.CAFile),
		Cert: filepath.Join(dir, client+".pem"),
		Key:  filepath.Join(dir, client+"-key.pem"),
	}
}

// ifaceNotes are the pool file comments listing the host's interfaces.
func ifaceNotes(ifaces []string) []string {
	if len(ifaces) == 0 {
		return nil
	}
	notes := []string{"interfaces found on the host: uncomment those cabled for tests, with their network", "interfaces:"}
	for _, i := range ifaces {
		f := strings.Fields(i)
		for len(f) < 3 {
			f = append(f, "")
		}
		entry := fmt.Sprintf("  - {name: %s, hwaddr: %q", f[0], f[1])
		if f[2] != "" {
			entry += ", driver: " + f[2]
		}
		notes = append(notes, entry+", network: NET}")
	}
	return notes
}

// makeCerts makes the host's certificate with the CA of dir (made if
// missing), and the client's certificate if missing; it says on log when
// the CA ends before validity from now (the certificate ends with it).
func makeCerts(dir, host, client string, validity time.Duration, log io.Writer) error {
	end, cut, err := agentconn.CAEndsBefore(dir, validity)
	if err != nil {
		return err
	}
	if err := agentconn.GenerateCerts(dir, []string{host}, nil, validity); err != nil {
		return err
	}
	if cut {
		fmt.Fprintf(log, "warning: the CA in %s ends %s, before the validity asked (%v): the certificate of %s ends with it\n",
			dir, end.UTC().Format(time.DateTime+" UTC"), validity, host)
	}
	if _, err := os.Stat(tlsFiles(dir, client).Cert); err == nil {
		return nil
	}
	return agentconn.GenerateCerts(dir, nil, []string{client}, validity)
}

// removeHostCerts removes the host's certificate and key from dir. A host
// whose name is not a certificate's of its own (the CA's "ca", a path) is
// refused: its files would be the CA's or outside dir.
func removeHostCerts(dir, host string) error {
	if err := agentconn.CheckCertName(host); err != nil {
		return fmt.Errorf("remove the certificate of host %q from %s: %w", host, dir, err)
	}
	tf := tlsFiles(dir, host)
	for _, f := range []string{tf.Cert, tf.Key} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the host's certificate: %w", err)
		}
	}
	return nil
}

// copyFile copies the local file to remote with mode.
func copyFile(ctx context.Context, c *Conn, local, remote string, mode os.FileMode) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", c.target, err)
	}
	defer f.Close()
	return c.WriteFile(ctx, remote, f, mode)
}

// writeFileAtomic replaces file with data, keeping its mode (0644 for a
// new file).
func writeFileAtomic(file string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	if dir := filepath.Dir(file); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".pool-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
