package blackhole

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echo serves a line echo on a TCP port.
func echo(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(l))
				}
			}()
		}
	}()
	return lis.Addr().String()
}

// say writes line on c and reads the answer, giving up after wait.
func say(c net.Conn, r *bufio.Reader, line string, wait time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

// TestCut forwards a connection, cuts it (what is sent goes unanswered and
// the connection stays open) and forwards a new one.
func TestCut(t *testing.T) {
	h, err := Listen("tcp", "127.0.0.1:0", echo(t))
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })

	old, err := net.Dial("tcp", h.Addr().String())
	require.NoError(t, err)
	defer old.Close()
	oldR := bufio.NewReader(old)
	got, err := say(old, oldR, "one", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "one\n", got)

	h.Cut()
	_, err = say(old, oldR, "two", 300*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "no answer on a cut connection")
	require.True(t, ne.Timeout(), "the cut connection is not closed, only silent: %v", err)

	fresh, err := net.Dial("tcp", h.Addr().String())
	require.NoError(t, err)
	defer fresh.Close()
	got, err = say(fresh, bufio.NewReader(fresh), "three", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "three\n", got, "a connection made after the cut is forwarded")
}
