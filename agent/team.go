package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Bounds of teamd's life as the agent sees it.
const (
	// teamdStartTimeout bounds how long CreateLink waits for teamd to
	// create its device.
	teamdStartTimeout = 10 * time.Second
	// teamdTailSize is how much of teamd's output an error quotes.
	teamdTailSize = 2 << 10
)

// teamdRunDirs are where teamd keeps its control socket (and, by default,
// its pid file). It makes the first itself; the agent makes them both, so
// that a teamdctl run as a job finds the socket either way.
var teamdRunDirs = []string{"/run/teamd", "/var/run/teamd"}

// teamdRunDir makes teamd's run directories. A namespace host with a mount
// namespace of its own gets them private, a tmpfs mounted in its mount
// namespace (teamd and the host's jobs see it, nothing else does): teamd's
// control socket is /run/teamd/NAME.sock, and teamd removes the socket it
// finds there, so two lab hosts making a team of one name would otherwise
// take each other's (a teamdctl on one would talk to the other's teamd).
func (h *host) teamdRunDir() error {
	for _, d := range teamdRunDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("make teamd's run directory: %w", err)
		}
	}
	if h.work == nil {
		return nil // the machine's own: one teamd per name
	}
	return h.do(func() error {
		own, err := os.Readlink("/proc/thread-self/ns/mnt")
		if err != nil {
			return fmt.Errorf("find the mount namespace of %s: %w", h.label(), err)
		}
		if agent, err := os.Readlink("/proc/self/ns/mnt"); err != nil || agent == own {
			return err // no mount namespace of its own (a lab network's switch)
		}
		mounted, err := mountPoints("/proc/thread-self/mountinfo")
		if err != nil {
			return err
		}
		for _, d := range teamdRunDirs {
			real, err := filepath.EvalSymlinks(d)
			if err != nil {
				return fmt.Errorf("resolve teamd's run directory: %w", err)
			}
			if mounted[real] {
				continue
			}
			if err := unix.Mount("tmpfs", real, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755"); err != nil {
				return fmt.Errorf("mount a tmpfs of %s on %s: %w", h.label(), real, err)
			}
			mounted[real] = true
		}
		return nil
	})
}

// mountPoints returns the mount points a mountinfo file lists.
func mountPoints(mountinfo string) (map[string]bool, error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	points := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT POINT ...; POINT escapes spaces as \040.
		if f := strings.Fields(l); len(f) > 4 {
			points[unescapeMount(f[4])] = true
		}
	}
	return points, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// teamd is a teamd process the agent started to make a team device. It is
// not a job: no recipe sees it, and only the undo of its CreateLink (or
// the end of its host) stops it.
//
// On a namespace host teamd dies with the host's thread (Pdeathsig) and
// its device with the namespace. On the root host, teamd dies with the
// agent (Pdeathsig, SIGKILL), and a teamd killed leaves its device behind:
// the journal on disk has the undo, which deletes the device with netlink.
type teamd struct {
	link string
	// dir holds the pid file: two hosts of a namespace lab share /run, and
	// teamd refuses to start over a pid file of a live process.
	dir string
	*daemon
}

// teamdArgs validates t and returns teamd's command line: foreground, the
// device and config given, the pid file at pidFile.
func teamdArgs(t devices.Team, pidFile string) ([]string, error) {
	cfg, err := t.TeamdConfig()
	if err != nil {
		return nil, err
	}
	if pidFile == "" {
		return nil, errors.New("teamd needs a pid file path")
	}
	return []string{"teamd", "-t", t.Name, "-c", cfg, "-p", pidFile}, nil
}

// createTeam starts teamd for t on h and waits until its device exists.
// The caller holds h.mu.
func (h *host) createTeam(t devices.Team) (undo, error) {
	u := undo{Op: opStopTeamd, Link: t.Name}
	fail := func(format string, args ...any) (undo, error) {
		return u, fmt.Errorf("create team %q on %s: %s", t.Name, h.label(), fmt.Sprintf(format, args...))
	}
	if _, err := h.nl.LinkByName(t.Name); err == nil {
		return u, fmt.Errorf("create team %q on %s: %w", t.Name, h.label(), unix.EEXIST)
	}
	if d := h.teamds[t.Name]; d != nil {
		return fail("a teamd of the agent (pid %d) still runs for it", d.cmd.Process.Pid)
	}
	path, err := exec.LookPath("teamd")
	if err != nil {
		return fail("team devices need teamd (Debian: apt-get install libteam-utils): %v", err)
	}
	if err := h.teamdRunDir(); err != nil {
		return fail("%v", err)
	}
	dir, err := os.MkdirTemp("", "lnst-teamd-")
	if err != nil {
		return fail("make teamd's pid file directory: %v", err)
	}
	argv, err := teamdArgs(t, dir+"/"+t.Name+".pid")
	if err != nil {
		os.RemoveAll(dir)
		return u, badArg(err)
	}
	// The clock is coarser than a file's times: allow for it.
	start := time.Now().Add(-time.Second)
	p, err := h.startDaemon(path, argv)
	if err != nil {
		os.RemoveAll(dir)
		return fail("start teamd: %v", err)
	}
	d := &teamd{link: t.Name, dir: dir, daemon: p}
	if h.teamds == nil {
		h.teamds = map[string]*teamd{}
	}
	h.teamds[t.Name] = d
	if err := h.waitTeam(d, start); err != nil {
		h.stopTeamdLocked(t.Name)
		return fail("%v", err)
	}
	return u, nil
}

// waitTeam waits until teamd is ready, teamd exits or teamdStartTimeout
// passes. teamd makes the device first and sets its runner's mode after (a
// port added in between makes it fail: "No ports can be present during
// mode change"); it opens its control socket after the runner is set up,
// so a socket newer than teamd's start says it is ready.
func (h *host) waitTeam(d *teamd, start time.Time) error {
	deadline := start.Add(teamdStartTimeout)
	sock := teamdRunDirs[0] + "/" + d.link + ".sock"
	for {
		if _, err := h.nl.LinkByName(d.link); err == nil && h.newSocket(sock, start) {
			return nil
		}
		select {
		case <-d.done:
			if _, err := h.nl.LinkByName(d.link); err == nil {
				// Made, then lost; the caller deletes it.
				return fmt.Errorf("teamd exited (%v) right after making the device: %s", d.err, d.out.String())
			}
			return fmt.Errorf("teamd exited (%v) before making the device: %s", d.err, d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("teamd was not ready (device and %s) in %v: %s", sock, teamdStartTimeout, d.out.String())
		}
	}
}

// newSocket reports whether path, on the host, is a socket made after
// start.
func (h *host) newSocket(path string, start time.Time) bool {
	return h.do(func() error {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.ModTime().Before(start) {
			return os.ErrNotExist
		}
		return nil
	}) == nil
}

// stopTeamd takes back a CreateLink of a team: it stops the teamd the
// agent started for it, which destroys the device on a clean exit, and
// deletes the device if it is still there.
func (h *host) stopTeamd(link string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopTeamdLocked(link)
}

func (h *host) stopTeamdLocked(link string) error {
	d := h.teamds[link]
	delete(h.teamds, link)
	var errs []error
	if d != nil {
		errs = append(errs, d.stop())
	}
	l, err := h.nl.LinkByName(link)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return errors.Join(append(errs, fmt.Errorf("find %q: %w", link, err))...)
		}
		if d == nil {
			return nothingToUndo("%s has no device %q nor a teamd for it", h.label(), link)
		}
		return errors.Join(errs...)
	}
	if err := h.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		errs = append(errs, fmt.Errorf("delete team %q on %s: %w", link, h.label(), err))
	}
	return errors.Join(errs...)
}

// stop sends teamd SIGTERM, waits for it to exit, and then kills its
// process group (see daemon.stop).
func (d *teamd) stop() error {
	defer os.RemoveAll(d.dir)
	pid := d.cmd.Process.Pid
	switch d.daemon.stop(func() { syscall.Kill(pid, syscall.SIGTERM) }) {
	case stoppedKilled:
		return fmt.Errorf("teamd of %q did not exit in %v of SIGTERM; killed it: %s", d.link, daemonStopTimeout, d.out.String())
	case stoppedSurvived:
		return fmt.Errorf("teamd of %q (pid %d) survived SIGKILL", d.link, pid)
	}
	return nil
}

// stopTeamds stops every teamd of the host (the host is going away).
func (h *host) stopTeamds() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for link := range h.teamds {
		h.stopTeamdLocked(link)
	}
}

// tail keeps the last teamdTailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf) - teamdTailSize; n > 0 {
		t.buf = append(t.buf[:0], t.buf[n:]...)
	}
	return len(p), nil
}

// String returns the kept output on one line, or says there was none.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return "(no output)"
	}
	return strings.ReplaceAll(s, "\n", "; ")
}

// createUndo is the undo a CreateLink of spec journals.
func createUndo(spec devices.Spec) string {
	if _, ok := spec.(devices.Team); ok {
		return opStopTeamd
	}
	return opDeleteLink
}
