package agentconn

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ParseAddr splits an agent address into a network and an address for
// package net: unix:///PATH gives ("unix", "/PATH") and HOST:PORT gives
// ("tcp", "HOST:PORT").
func ParseAddr(addr string) (network, address string, err error) {
	switch {
	case addr == "":
		return "", "", errors.New("empty address (want unix:///PATH or HOST:PORT)")
	case strings.HasPrefix(addr, "unix://"):
		p := strings.TrimPrefix(addr, "unix://")
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("address %q: the socket path must be absolute (unix:///PATH)", addr)
		}
		return "unix", p, nil
	case strings.Contains(addr, "://"):
		return "", "", fmt.Errorf("address %q: unknown scheme (want unix:///PATH or HOST:PORT)", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("address %q: want unix:///PATH or HOST:PORT: %w", addr, err)
	}
	if port == "" {
		return "", "", fmt.Errorf("address %q: no port", addr)
	}
	return "tcp", net.JoinHostPort(host, port), nil
}

// Listen listens on unix:///PATH or HOST:PORT. A unix socket is made
// readable and writable by its owner only (the agent runs commands as
// root), from the moment it exists: it is bound under umask 0177 (see
// listenUnix); a socket file left by an agent that died is replaced, a
// socket something still listens on is not.
//
// Listen does not check who connects: the caller wraps a unix listener in
// a peercred.Listener for that.
func Listen(listen string) (net.Listener, error) {
	network, address, err := ParseAddr(listen)
	if err != nil {
		return nil, err
	}
	var lis net.Listener
	if network == "unix" {
		removeStaleSocket(address)
		lis, err = listenUnix(address)
	} else {
		lis, err = net.Listen(network, address)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	return lis, nil
}

// listenUnix binds a unix socket at path whose mode is 0600 when bind
// makes it, with no moment in which another user could connect (as there
// was when the socket was made under the process's umask and chmodded
// after). The umask is the process's, shared by all its threads, so the
// bind runs on an OS thread of its own that first unshares its file
// system attributes (CLONE_FS) and sets umask 0177 there; the thread is
// never handed back to the Go runtime, so it ends with its goroutine and
// no other code ever runs under that umask.
func listenUnix(path string) (net.Listener, error) {
	type result struct {
		lis net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// No UnlockOSThread: the thread's umask differs from the
		// process's, so the runtime must end it with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- result{err: fmt.Errorf("give the binding thread its own umask: unshare(CLONE_FS): %w", err)}
			return
		}
		unix.Umask(0o177)
		lis, err := net.Listen("unix", path)
		done <- result{lis, err}
	}()
	r := <-done
	return r.lis, r.err
}

// removeStaleSocket removes the socket at path if nothing listens on it.
func removeStaleSocket(path string) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path)
	}
}
