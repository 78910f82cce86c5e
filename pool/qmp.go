package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// Each VM lab guest's QEMU serves QMP, its machine protocol, on a unix
// socket in the lab's run directory, next to the agent's socket: the
// controller reaches it there directly, although QEMU runs in a namespace
// host of the lab agent (a path socket belongs to the filesystem, which
// the lab shares with this machine). ResetGuest presses the guest's reset
// button through it.

// qmpSocket is the QMP socket of guest name in the run directory dir.
func qmpSocket(dir, name string) string { return filepath.Join(dir, name+".qmp") }

// qmpArgs are the QEMU options of a guest's QMP socket.
func qmpArgs(sock string) []string {
	return []string{"-qmp", "unix:" + sock + ",server=on,wait=off"}
}

// qmpMessage is any message QEMU sends on QMP: its greeting, a command's
// reply (return or error) or an asynchronous event.
type qmpMessage struct {
	Greeting json.RawMessage `json:"QMP"`
	Return   json.RawMessage `json:"return"`
	Error    *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// qmpRun connects to the QMP socket at sock, leaves QMP's capabilities
// negotiation mode and runs each command in turn. It fails on the first
// error QEMU returns, and when ctx ends.
func qmpRun(ctx context.Context, sock string, commands ...string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("QMP %s: %w", sock, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	dec := json.NewDecoder(conn)
	var hello qmpMessage
	if err := dec.Decode(&hello); err != nil {
		return qmpError(ctx, sock, "read the greeting", err)
	}
	if hello.Greeting == nil {
		return fmt.Errorf("QMP %s: the first message is not QEMU's greeting", sock)
	}
	enc := json.NewEncoder(conn)
	for _, cmd := range append([]string{"qmp_capabilities"}, commands...) {
		if err := enc.Encode(map[string]string{"execute": cmd}); err != nil {
			return qmpError(ctx, sock, cmd, err)
		}
		for {
			var m qmpMessage
			if err := dec.Decode(&m); err != nil {
				return qmpError(ctx, sock, cmd, err)
			}
			if m.Error != nil {
				return fmt.Errorf("QMP %s: %s: %s: %s", sock, cmd, m.Error.Class, m.Error.Desc)
			}
			if m.Return != nil {
				break
			}
			// An event (RESET, ...): the reply is still to come.
		}
	}
	return nil
}

func qmpError(ctx context.Context, sock, what string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return fmt.Errorf("QMP %s: %s: %w", sock, what, err)
}

// ResetGuest resets a VM host (by its topology name) as its reset button
// would: QEMU's system_reset, over the guest's QMP socket. Its kernel
// does not shut down: the guest boots again in the same QEMU process,
// with its disks and sockets, and its agent starts from scratch (see
// RedialGuest and GuestRebooted for what the controller does next).
func (in *Instance) ResetGuest(ctx context.Context, host string) error {
	g := in.guests[host]
	if g == nil {
		return errors.New("VM lab: " + host + " is not a VM host of this instance")
	}
	if err := qmpRun(ctx, g.qmp, "system_reset"); err != nil {
		return fmt.Errorf("VM lab: reset %s: %w", host, err)
	}
	return nil
}
