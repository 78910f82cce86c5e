package pool

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lnst-go/lnst/internal/sockprobe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rootlessControllerEnv makes the test binary start a rootless lab, print
// "ready <agent pid>" and keep the lab until its stdin closes.
const rootlessControllerEnv = "LNST_POOL_TEST_ROOTLESS_CONTROLLER"

func rootlessController() int {
	l, err := StartLab(LabOptions{AgentLogLevel: "warn", UserNS: true})
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 0
	}
	fmt.Printf("ready %d\n", l.Hello().Pid)
	io.Copy(io.Discard, os.Stdin)
	if err := l.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "close the rootless lab: %v\n", err)
		return 1
	}
	return 0
}

// requirePrivateDir checks that every one of the agent's sockets is a
// file in a directory of the agent's controller, uid, mode 0700.
func requirePrivateDir(t *testing.T, socks []sockprobe.Socket, uid int) {
	t.Helper()
	for _, s := range socks {
		if !strings.HasPrefix(s.Path, "/") {
			t.Errorf("the agent listens on %q: not a socket file (an abstract socket has no permissions)", s.Path)
			continue
		}
		fi, err := os.Lstat(filepath.Dir(s.Path))
		require.NoError(t, err)
		assert.Equal(t, os.ModeDir|0o700, fi.Mode(), "mode of the directory of %s", s.Path)
		assert.Equal(t, uint32(uid), fi.Sys().(*syscall.Stat_t).Uid, "owner of the directory of %s", s.Path)
	}
}

// loosen opens the agent's socket files and their directories to
// everyone, so that only the agent's peer check stands between another
// user and the agent.
func loosen(t *testing.T, socks []sockprobe.Socket) {
	t.Helper()
	for _, s := range socks {
		if strings.HasPrefix(s.Path, "/") {
			require.NoError(t, os.Chmod(filepath.Dir(s.Path), 0o755))
			require.NoError(t, os.Chmod(s.Path, 0o777))
		}
	}
}

// requireConnected checks that the probe connected to each of socks:
// what refused it was the agent, not the file system.
func requireConnected(t *testing.T, res []sockprobe.Result, socks []sockprobe.Socket) {
	t.Helper()
	for _, s := range socks {
		for _, r := range res {
			if r.Addr == s.Path {
				assert.Empty(t, r.Connect, "connect to %s once its modes let everyone", s.Path)
			}
		}
	}
}

// TestLabRefusesOtherUsers starts the root lab and probes it as user
// nobody, who reads its socket from /proc/net/unix: the socket is in a
// directory only root enters, and with that directory and the socket
// opened to everyone the agent still refuses nobody (SO_PEERCRED).
func TestLabRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lab requires root")
	}
	l, err := StartLab(LabOptions{AgentLogLevel: "warn"})
	require.NoError(t, err)
	socks, err := sockprobe.ListeningOf(int(l.Hello().Pid))
	t.Cleanup(func() {
		assert.NoError(t, l.Close())
		for _, s := range socks {
			assert.NoDirExists(t, filepath.Dir(s.Path), "the agent's socket directory after Close")
		}
	})
	require.NoError(t, err)
	requirePrivateDir(t, socks, 0)

	sockprobe.RequireRefused(t, sockprobe.Probe(t, sockprobe.Nobody, sockprobe.Nobody), socks)

	loosen(t, socks)
	res := sockprobe.Probe(t, sockprobe.Nobody, sockprobe.Nobody)
	sockprobe.RequireRefused(t, res, socks)
	requireConnected(t, res, socks)

	// The controller's own user still gets in.
	_, err = l.Client().Hello(t.Context(), nil)
	assert.NoError(t, err, "the controller's Hello")
}

// TestRootlessLabRefusesOtherUsers starts a rootless lab as user nobody
// and probes it as another user (uid 65533) and as root: the agent runs
// as the invoking user in a user namespace, and no one else reaches it.
func TestRootlessLabRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starting the lab as another user requires root")
	}
	ctl := exec.Command(os.Args[0], "-test.run=^$")
	sockprobe.AsUser(t, ctl, sockprobe.Nobody, sockprobe.Nobody)
	ctl.Env = append(os.Environ(), rootlessControllerEnv+"=1")
	ctl.Stderr = os.Stderr
	stdin, err := ctl.StdinPipe()
	require.NoError(t, err)
	stdout, err := ctl.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, ctl.Start())
	var socks []sockprobe.Socket
	t.Cleanup(func() {
		stdin.Close()
		assert.NoError(t, ctl.Wait(), "the controller's exit")
		for _, s := range socks {
			assert.NoDirExists(t, filepath.Dir(s.Path), "the agent's socket directory after Close")
		}
	})
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	require.NoError(t, err, "the controller's first line")
	go io.Copy(io.Discard, out)
	if msg, ok := strings.CutPrefix(strings.TrimSpace(line), "error "); ok {
		if strings.Contains(msg, "user namespace") {
			t.Skipf("no rootless lab here: %s", msg)
		}
		t.Fatalf("the controller: %s", msg)
	}
	pidText, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	require.True(t, ok, "the controller's first line %q", line)
	pid, err := strconv.Atoi(pidText)
	require.NoError(t, err)
	socks, err = sockprobe.ListeningOf(pid)
	require.NoError(t, err)
	requirePrivateDir(t, socks, sockprobe.Nobody)

	const other = 65533
	sockprobe.RequireRefused(t, sockprobe.Probe(t, other, other), socks)
	// Root enters the directory, but is no one in the agent's namespace.
	res := sockprobe.Probe(t, 0, 0)
	sockprobe.RequireRefused(t, res, socks)
	requireConnected(t, res, socks)

	loosen(t, socks)
	res = sockprobe.Probe(t, other, other)
	sockprobe.RequireRefused(t, res, socks)
	requireConnected(t, res, socks)
}
