package peercred

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lnst-go/lnst/internal/sockprobe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connectEnv makes the test binary a child that connects to the socket it
// names and prints what the server sent before closing.
const connectEnv = "LNST_PEERCRED_TEST_CONNECT"

func TestMain(m *testing.M) {
	if path := os.Getenv(connectEnv); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Printf("connect: %v\n", err)
			os.Exit(0)
		}
		b, err := io.ReadAll(c)
		fmt.Printf("read %q err %v\n", b, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveWelcome accepts on lis until it closes, writing "welcome" to each
// connection Accept returns.
func serveWelcome(lis net.Listener) {
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("welcome"))
		c.Close()
	}
}

// TestRestrictRefusesOtherUID makes a socket anyone may reach (mode 0777
// in a 0755 directory): user nobody connects, and is closed without a
// byte; the refusal names its pid and uid; the listener goes on
// accepting, and the allowed user (this process's) is welcome.
func TestRestrictRefusesOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("connecting as another user requires root")
	}
	dir, err := os.MkdirTemp("", "lnst-peercred-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	path := filepath.Join(dir, "open.sock")
	inner, err := net.Listen("unix", path)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o777))
	var mu sync.Mutex
	var refused []Refusal
	lis := Restrict(inner, os.Geteuid(), func(r Refusal) {
		mu.Lock()
		refused = append(refused, r)
		mu.Unlock()
	})
	defer lis.Close()
	go serveWelcome(lis)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	sockprobe.AsUser(t, cmd, sockprobe.Nobody, sockprobe.Nobody)
	cmd.Env = append(os.Environ(), connectEnv+"="+path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child: %s", out)
	assert.Equal(t, `read "" err <nil>`, strings.TrimSpace(string(out)), "what nobody got: connected (the file lets it), then closed unread")

	// The allowed user is served by the same listener afterwards.
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	b, err := io.ReadAll(bufio.NewReader(c))
	c.Close()
	require.NoError(t, err)
	assert.Equal(t, "welcome", string(b), "what this process's user got")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, refused, 1, "refusals")
	assert.Equal(t, cmd.Process.Pid, refused[0].PID, "refused pid")
	assert.Equal(t, sockprobe.Nobody, refused[0].UID, "refused uid")
	assert.Contains(t, refused[0].Reason, "uid 65534 is not the allowed uid 0")
}

// TestRestrictRefusesNonUnix: a connection whose peer cannot be known (not
// a unix socket) is refused, not let through.
func TestRestrictRefusesNonUnix(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusals := make(chan Refusal, 1)
	lis := Restrict(inner, os.Geteuid(), func(r Refusal) { refusals <- r })
	defer lis.Close()
	go serveWelcome(lis)
	c, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	b, _ := io.ReadAll(c)
	c.Close()
	assert.Empty(t, b, "what the TCP peer got")
	r := <-refusals
	assert.Equal(t, -1, r.UID)
	assert.Contains(t, r.Reason, "is not a unix socket connection")
}
