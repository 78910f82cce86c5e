// Package peercred restricts a unix socket listener to one user: every
// accepted connection's peer credentials (SO_PEERCRED) are checked, and a
// connection from any other uid is closed before anything reads from it.
//
// The kernel records the peer's credentials when it connects, and reports
// its uid as seen from the listening process's user namespace: inside the
// rootless lab's namespace the invoking user is uid 0, and every user the
// namespace does not map (root included) is the overflow uid, 65534.
//
// It is its own package, not part of internal/agentconn, because the agent
// uses it and agentconn's tests import the agent.
package peercred

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Refusal describes a connection Listener closed: the peer's pid and uid
// as the kernel reports them (-1 when they could not be read), and why.
type Refusal struct {
	PID    int
	UID    int
	Reason string
}

// Listener is a net.Listener whose Accept returns only connections from
// processes of one uid. Make it with Restrict.
type Listener struct {
	net.Listener
	uid     uint32
	refused func(Refusal)
}

// Restrict wraps lis, a unix socket listener, so that Accept returns only
// connections whose peer's effective uid (at connect) is uid; others are
// closed, reported to refused (which may be nil) and Accept waits for the
// next. A connection that is not a unix socket, or whose credentials
// cannot be read, is refused too.
func Restrict(lis net.Listener, uid int, refused func(Refusal)) *Listener {
	if refused == nil {
		refused = func(Refusal) {}
	}
	return &Listener{Listener: lis, uid: uint32(uid), refused: refused}
}

// Accept waits for the next connection from the allowed uid.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cred, err := Peer(c)
		switch {
		case err != nil:
			l.refused(Refusal{PID: -1, UID: -1, Reason: err.Error()})
		case cred.Uid != l.uid:
			l.refused(Refusal{PID: int(cred.Pid), UID: int(cred.Uid), Reason: fmt.Sprintf("uid %d is not the allowed uid %d", cred.Uid, l.uid)})
		default:
			return c, nil
		}
		c.Close()
	}
}

// UID is the uid Accept lets through.
func (l *Listener) UID() int { return int(l.uid) }

// Peer returns the credentials the kernel recorded for the process at the
// other end of c, a unix socket connection.
func Peer(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("peer credentials: %T is not a unix socket connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: SO_PEERCRED: %w", credErr)
	}
	if cred == nil {
		return nil, errors.New("peer credentials: SO_PEERCRED returned nothing")
	}
	return cred, nil
}
