package pool

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// A VM lab guest reboots in its QEMU process: the guest agent's Reboot
// calls reboot(2), QEMU resets the machine and boots its -kernel (or the
// kernel loaded for kexec) again, and the new agent takes back, from the
// journal on its state disk, what the test had changed. The controller's
// connection to the guest's virtio-serial socket outlives the guest's
// side of it: it is redialled once the old agent is gone.

// guestConnect are the dial parameters of a guest's socket. A handshake
// whose bytes the guest lost (they reached an agent that was going away,
// or the port while it was being reopened) is retried after
// MinConnectTimeout, not grpc's default 20 s; reconnects back off up to a
// second, not two minutes.
var guestConnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 3 * time.Second,
}

// guestKeepalive has the controller ping a guest's agent, also between
// calls. The virtio-serial port is one byte stream under every connection
// to it: when the guest's side of a connection ends (its gRPC server
// dropped bytes it could not parse, say a handshake that reached it on an
// older connection), QEMU keeps the socket open and the controller's
// connection looks alive while nothing answers. Unanswered pings close it
// and the next call connects anew. Seen once as a guest that printed
// "lnst-agent ready" and answered no Hello for three minutes.
var guestKeepalive = keepalive.ClientParameters{Time: agentconn.Keepalive.Time, Timeout: agentconn.Keepalive.Timeout, PermitWithoutStream: true}

// guestConn is the controller's connection to a guest's agent, which
// Redial replaces under its clients: the pb.AgentClient made on it stays
// the same value across the guest's reboots.
type guestConn struct {
	sock string
	mu   sync.RWMutex
	cc   *grpc.ClientConn
}

var _ grpc.ClientConnInterface = (*guestConn)(nil)

func newGuestConn(sock string) (*guestConn, error) {
	g := &guestConn{sock: sock}
	cc, err := g.dial()
	if err != nil {
		return nil, err
	}
	g.cc = cc
	return g, nil
}

func (g *guestConn) dial() (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient("unix://"+g.sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(guestConnect), grpc.WithKeepaliveParams(guestKeepalive))
	if err != nil {
		return nil, fmt.Errorf("VM lab: dial %s: %w", g.sock, err)
	}
	return cc, nil
}

func (g *guestConn) current() *grpc.ClientConn {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.cc
}

// Invoke implements grpc.ClientConnInterface.
func (g *guestConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return g.current().Invoke(ctx, method, args, reply, opts...)
}

// NewStream implements grpc.ClientConnInterface.
func (g *guestConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return g.current().NewStream(ctx, desc, method, opts...)
}

// redial closes the connection (its calls fail) and makes a new one,
// which connects on its first call.
func (g *guestConn) redial() error {
	cc, err := g.dial()
	if err != nil {
		return err
	}
	g.mu.Lock()
	old := g.cc
	g.cc = cc
	g.mu.Unlock()
	return old.Close()
}

// Close closes the connection.
func (g *guestConn) Close() error { return g.current().Close() }

// RedialGuest drops the controller's connection to a VM host's agent
// (by its topology name) and makes a new one, which connects on its next
// call; calls in flight fail. After the guest rebooted, the old
// connection is to an agent that is gone: QEMU keeps the socket open, so
// nothing tells its client. It is a no-op on a namespace lab.
func (in *Instance) RedialGuest(host string) error {
	g := in.guests[host]
	if g == nil || g.conn == nil {
		return nil
	}
	return g.conn.redial()
}

// ResetGuestBackoff makes a VM host's connection try to connect now
// rather than after its reconnect backoff.
func (in *Instance) ResetGuestBackoff(host string) {
	if g := in.guests[host]; g != nil && g.conn != nil {
		g.conn.current().ResetConnectBackoff()
	}
}

// GuestRebooted puts a VM host that rebooted back as the lab made it: its
// agent names the NICs at boot and leaves them down, so it sets them up
// again (as WaitUsable does for a new instance), in the instance's group.
func (l *Lab) GuestRebooted(ctx context.Context, in *Instance, host string) error {
	g := in.guests[host]
	if g == nil {
		return fmt.Errorf("VM lab: %s is not a VM host of this instance", host)
	}
	up := true
	for _, h := range in.topo.Hosts {
		if h.Name != host {
			continue
		}
		for _, i := range h.Ifaces {
			if _, err := g.client.SetLink(ctx, &pb.SetLinkRequest{Group: in.group, Name: in.Ifname(h.Name, i.Name), Up: &up}); err != nil {
				return fmt.Errorf("VM lab: host %s interface %s after its reboot: %w", host, i.Name, err)
			}
		}
	}
	return nil
}

// consolePanickedTail is how much of the console's end consolePanicked
// reads: the panic message of the current boot is in it, and an earlier
// boot's is soon out of it.
const consolePanickedTail = 4096

// consolePanicked reports whether the end of a guest's console file holds
// a kernel panic message.
func consolePanicked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > consolePanickedTail {
		f.Seek(fi.Size()-consolePanickedTail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, consolePanickedTail))
	return strings.Contains(string(b), "Kernel panic - not syncing")
}

// makeStateDisk makes a guest's state disk: a sparse file of vmStateSize
// with an ext4 file system (mkfs.ext4 works on a regular file, without
// root).
func makeStateDisk(ctx context.Context, path string) error {
	mkfs, err := mkfsExt4()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("state disk: %w", err)
	}
	err = f.Truncate(vmStateSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var out []byte
		out, err = exec.CommandContext(ctx, mkfs, "-q", "-F", "-L", vmStateSerial, "-E", "lazy_itable_init=1,lazy_journal_init=1", path).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%s %s: %w: %s", mkfs, path, err, strings.TrimSpace(string(out)))
		}
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("state disk: %w", err)
	}
	return nil
}

// mkfsExt4 finds mkfs.ext4, also where /usr/sbin is not on PATH (an
// unprivileged user's).
func mkfsExt4() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("state disk: mkfs.ext4 not found: install it with apt-get install --no-install-recommends e2fsprogs")
}
