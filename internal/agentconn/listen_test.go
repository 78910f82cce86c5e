package agentconn

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestUnixSocketNeverOpen checks that Listen makes its socket 0600 as it
// binds it, even under a process umask of 0: the directory sees the
// socket created and never its attributes changed afterwards (a chmod
// after bind leaves a moment in which anyone may connect, and shows as an
// IN_ATTRIB event). Listen leaves the process's umask as it was.
func TestUnixSocketNeverOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.sock")
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(in)
	_, err = unix.InotifyAddWatch(in, dir, unix.IN_CREATE|unix.IN_ATTRIB)
	require.NoError(t, err)

	old := syscall.Umask(0)
	lis, err := Listen("unix://" + path)
	after := syscall.Umask(old)
	require.NoError(t, err)
	defer lis.Close()
	assert.Equal(t, 0, after, "the process's umask after Listen (it set 0 before)")

	fi, err := os.Lstat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode(), "socket mode")

	var events []string
	buf := make([]byte, 4096)
	n, err := unix.Read(in, buf)
	require.NoError(t, err, "read the directory's inotify events")
	for b := buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
		mask := binary.NativeEndian.Uint32(b[4:8])
		nameLen := binary.NativeEndian.Uint32(b[12:16])
		name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+int(nameLen)], "\x00"))
		b = b[unix.SizeofInotifyEvent+int(nameLen):]
		switch {
		case mask&unix.IN_CREATE != 0:
			events = append(events, "create "+name)
		case mask&unix.IN_ATTRIB != 0:
			events = append(events, "attrib "+name)
		}
	}
	assert.Equal(t, []string{"create agent.sock"}, events, "what the socket's directory saw")
}
