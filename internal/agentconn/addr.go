package agentconn

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
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
// root); a socket file left by an agent that died is replaced, a socket
// something still listens on is not.
func Listen(listen string) (net.Listener, error) {
	network, address, err := ParseAddr(listen)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		removeStaleSocket(address)
	}
	lis, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			lis.Close()
			return nil, fmt.Errorf("listen on %s: %w", listen, err)
		}
	}
	return lis, nil
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
