package deploy

import (
	"fmt"
	"path"
	"strings"
)

// layout is where Install puts the agent's files on a host. Uninstall
// removes each of them; nothing else is written on the host (besides what
// the agent itself journals and undoes while it runs).
type layout struct {
	Binary    string // the agent binary
	ConfigDir string // the agent's ca.pem, agent.pem and agent-key.pem, mode 0700
	Unit      string // the systemd unit
	StateDir  string // the agent's state: its journal of changes to undo
	// Hosts without systemd (containers): the detached agent's pid and log.
	PidFile string
	LogFile string
}

// defaultLayout is the layout of a host, following the FHS and systemd.
var defaultLayout = layout{
	Binary:    "/usr/local/bin/lnst-agent",
	ConfigDir: "/etc/lnst-agent",
	Unit:      "/etc/systemd/system/lnst-agent.service",
	StateDir:  "/var/lib/lnst-agent",
	PidFile:   "/run/lnst-agent.pid",
	LogFile:   "/var/log/lnst-agent.log",
}

// Files of the agent's TLS identity in ConfigDir.
const (
	remoteCAFile   = "ca.pem"
	remoteCertFile = "agent.pem"
	remoteKeyFile  = "agent-key.pem"
)

// UnitName is the systemd unit's name.
func (l layout) UnitName() string { return path.Base(l.Unit) }

// WantsLink is the symlink `systemctl enable` makes for the unit.
func (l layout) WantsLink() string {
	return path.Join(path.Dir(l.Unit), "multi-user.target.wants", l.UnitName())
}

// Paths are every path Install may create on the host: after Uninstall
// none of them exists.
func (l layout) Paths() []string {
	return []string{l.Binary, l.ConfigDir, l.Unit, l.WantsLink(), l.StateDir, l.PidFile, l.LogFile}
}

// journal is the agent's journal file.
func (l layout) journal() string { return path.Join(l.StateDir, "journal") }

// check checks every path is absolute and clean: they are removed
// recursively by Uninstall, and written in the unit and in shell commands.
func (l layout) check() error {
	for _, p := range l.Paths() {
		if !path.IsAbs(p) || path.Clean(p) != p || strings.Count(p, "/") < 2 || strings.ContainsAny(p, " \t\n\x00\"'\\%$") {
			return fmt.Errorf("layout path %q: want an absolute, clean path at least two levels deep, without white space, quotes, %% or $", p)
		}
	}
	return nil
}

// ServeArgs are the arguments of `lnst-agent serve` on the host.
func (l layout) ServeArgs(port int) []string {
	return []string{
		"serve",
		"--listen", fmt.Sprintf(":%d", port),
		"--ca", path.Join(l.ConfigDir, remoteCAFile),
		"--cert", path.Join(l.ConfigDir, remoteCertFile),
		"--key", path.Join(l.ConfigDir, remoteKeyFile),
		"--journal", l.journal(),
	}
}

// UnitText is the systemd unit that runs the agent on port. On stop,
// systemd sends SIGTERM to the agent alone (KillMode=mixed): the agent
// kills its own jobs and undoes its changes, and whatever is left after
// it exited is killed.
func (l layout) UnitText(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Installed by lnst-agent install; lnst-agent uninstall removes it.\n")
	fmt.Fprintf(&b, "[Unit]\nDescription=lnst-go agent\nWants=network-online.target\nAfter=network-online.target\n\n")
	fmt.Fprintf(&b, "[Service]\nExecStart=%s %s\n", l.Binary, strings.Join(l.ServeArgs(port), " "))
	if rel, ok := strings.CutPrefix(l.StateDir, "/var/lib/"); ok {
		fmt.Fprintf(&b, "StateDirectory=%s\nStateDirectoryMode=0700\n", rel)
	}
	fmt.Fprintf(&b, "KillMode=mixed\nTimeoutStopSec=60\nRestart=on-failure\nRestartSec=2\n\n")
	fmt.Fprintf(&b, "[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// detachedStart is the shell command that starts the agent without
// systemd: in a session of its own, its pid in PidFile, its output in
// LogFile.
func (l layout) detachedStart(port int) string {
	args := []string{shellQuote(l.Binary)}
	for _, a := range l.ServeArgs(port) {
		args = append(args, shellQuote(a))
	}
	inner := fmt.Sprintf("cd / && echo $$ > %s && exec setsid %s", shellQuote(l.PidFile), strings.Join(args, " "))
	// A simple command in the background: the session's output pipes are
	// all redirected, so the session ends while the agent runs.
	return fmt.Sprintf("nohup sh -c %s >> %s 2>&1 < /dev/null &", shellQuote(inner), shellQuote(l.LogFile))
}
