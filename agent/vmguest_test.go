package agent

import (
	"context"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// fakePort stands in for a virtio-serial port: each open makes a fresh
// socketpair, returns the guest's end and hands the host's end to the next
// dial. Like the real port, the guest's end is readable once the host
// sends, and reads EOF once the host's end is closed.
type fakePort struct {
	hostEnds chan net.Conn
	opens    atomic.Int32
}

func newFakePort(t *testing.T) *fakePort {
	p := &fakePort{hostEnds: make(chan net.Conn, 8)}
	t.Cleanup(func() {
		close(p.hostEnds)
		for c := range p.hostEnds {
			c.Close()
		}
	})
	return p
}

func (p *fakePort) open() (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	f := os.NewFile(uintptr(fds[1]), "host end")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[0])
		return -1, err
	}
	p.opens.Add(1)
	p.hostEnds <- c
	return fds[0], nil
}

// dial returns the host's end of the port's latest open.
func (p *fakePort) dial(ctx context.Context, _ string) (net.Conn, error) {
	select {
	case c := <-p.hostEnds:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// testPortServer serves a (non-lab) agent over a portListener on port.
func testPortServer(t *testing.T, port *fakePort) *portListener {
	t.Helper()
	srv, err := NewServer(Options{})
	require.NoError(t, err, "new agent")
	lis := newPortListener("lnst.agent", port.open)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	t.Cleanup(func() {
		for _, err := range srv.Shutdown() {
			t.Errorf("agent shutdown: %v", err)
		}
		g.Stop()
		assert.NoError(t, <-served, "serve")
	})
	return lis
}

// testPortClient dials the agent over port, as the host does over QEMU's
// chardev socket.
func testPortClient(t *testing.T, port *fakePort) (*grpc.ClientConn, pb.AgentClient) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///lnst.agent",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(port.dial))
	require.NoError(t, err, "new client")
	t.Cleanup(func() { conn.Close() })
	return conn, pb.NewAgentClient(conn)
}

func TestPortListenerServesGRPC(t *testing.T) {
	port := newFakePort(t)
	testPortServer(t, port)
	conn, c := testPortClient(t, port)

	hello, err := c.Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err, "hello")
	assert.False(t, hello.Lab)
	assert.Equal(t, "hi\n", testSh(t, c, "", "echo hi"))

	// The host's client drops: the guest reads EOF, closes the port and
	// accepts the next client on a freshly opened port.
	require.NoError(t, conn.Close())
	_, c2 := testPortClient(t, port)
	assert.Equal(t, "again\n", testSh(t, c2, "", "echo again"))
	assert.Equal(t, int32(2), port.opens.Load(), "port opens")
}

// testRecv receives from ch, failing the test after 10 s.
func testRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10s for %s", what)
		panic("unreachable")
	}
}

// testNoRecv asserts that nothing arrives on ch for a while.
func testNoRecv[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: want none yet", what)
	case <-time.After(200 * time.Millisecond):
	}
}

// testAcceptAll accepts on lis until it fails, sending each connection,
// and closes the channel then.
func testAcceptAll(lis net.Listener) <-chan net.Conn {
	accepted := make(chan net.Conn)
	go func() {
		defer close(accepted)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return accepted
}

func TestPortListenerOneConnAtATime(t *testing.T) {
	port := newFakePort(t)
	lis := newPortListener("lnst.agent", port.open)
	t.Cleanup(func() { lis.Close() })
	accepted := testAcceptAll(lis)

	host1 := testRecv(t, port.hostEnds, "first open")
	defer host1.Close()
	testNoRecv(t, accepted, "accept before the host sent anything")
	_, err := host1.Write([]byte("a"))
	require.NoError(t, err)
	c1 := testRecv(t, accepted, "first accept")
	defer c1.Close()
	assert.Equal(t, "virtio-serial", c1.LocalAddr().Network())
	assert.Equal(t, "lnst.agent", c1.RemoteAddr().String())
	b := make([]byte, 8)
	n, err := c1.Read(b)
	require.NoError(t, err)
	assert.Equal(t, "a", string(b[:n]))
	_, err = c1.Write([]byte("reply"))
	require.NoError(t, err)
	n, err = host1.Read(b)
	require.NoError(t, err)
	assert.Equal(t, "reply", string(b[:n]))

	testNoRecv(t, port.hostEnds, "open while a connection is open")
	require.NoError(t, host1.Close())
	_, err = c1.Read(b)
	assert.ErrorIs(t, err, io.EOF, "read after the host's client left")
	require.NoError(t, c1.Close())

	host2 := testRecv(t, port.hostEnds, "open after close")
	defer host2.Close()
	_, err = host2.Write([]byte("b"))
	require.NoError(t, err)
	c2 := testRecv(t, accepted, "second accept")
	defer c2.Close()
	n, err = c2.Read(b)
	require.NoError(t, err)
	assert.Equal(t, "b", string(b[:n]))

	// An Accept waiting for c2 to close ends with Close.
	require.NoError(t, lis.Close())
	_, ok := <-accepted
	assert.False(t, ok, "accept after close")
}

func TestPortListenerCloseUnblocksAccept(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) (int, error){
		// A pipe whose writer is gone polls POLLHUP alone, as a port does
		// while the host side has no client.
		"host not connected": func(t *testing.T) (int, error) {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
				return -1, err
			}
			unix.Close(p[1])
			return p[0], nil
		},
		"host connected, silent": func(t *testing.T) (int, error) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			if err != nil {
				return -1, err
			}
			t.Cleanup(func() { unix.Close(fds[1]) })
			return fds[0], nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			opened := make(chan struct{}, 1)
			lis := newPortListener("lnst.agent", func() (int, error) {
				opened <- struct{}{}
				return open(t)
			})
			errc := make(chan error, 1)
			go func() {
				c, err := lis.Accept()
				if c != nil {
					c.Close()
				}
				errc <- err
			}()
			testRecv(t, opened, "open")
			testNoRecv(t, errc, "accept before the host sent anything")
			require.NoError(t, lis.Close())
			assert.ErrorIs(t, testRecv(t, errc, "accept to end"), net.ErrClosed)
		})
	}
}

func TestPortListenerOpenError(t *testing.T) {
	busy := 0
	lis := newPortListener("lnst.agent", func() (int, error) {
		if busy < 2 {
			busy++
			return -1, &os.PathError{Op: "open", Path: "/dev/vport0p1", Err: unix.EBUSY}
		}
		return -1, &os.PathError{Op: "open", Path: "/dev/vport0p1", Err: unix.ENOENT}
	})
	defer lis.Close()
	_, err := lis.Accept()
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.Equal(t, 2, busy, "retries while busy")
	assert.Contains(t, err.Error(), "lnst.agent")
}

// testSysfsDirs makes a fake sysfs class directory: for each key of
// values, a directory of that name whose file holds the value and a
// newline. It returns the directory.
func testSysfsDirs(t *testing.T, file string, values map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for d, v := range values {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, d, file), []byte(v+"\n"), 0o644))
	}
	return dir
}

func TestPortDevice(t *testing.T) {
	dir := testSysfsDirs(t, "name", map[string]string{"vport0p1": "org.qemu.guest_agent.0", "vport1p2": "lnst.agent"})
	dev, err := portDevice(dir, "lnst.agent")
	require.NoError(t, err)
	assert.Equal(t, "/dev/vport1p2", dev)

	_, err = waitPortDevice(dir, "other", 300*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no virtio-serial port is named "other"`)
	assert.Contains(t, err.Error(), `"lnst.agent"`)
}

func TestVMConfig(t *testing.T) {
	for _, tc := range []struct {
		name, json, err string
		ifaces          map[string]string
	}{
		{name: "ok", json: `{"hostname":"h1","port":"lnst.agent","ifaces":{"52:54:00:AA:00:01":"eth0","52:54:00:aa:00:02":"data1"},"log_level":"debug"}`,
			ifaces: map[string]string{"52:54:00:aa:00:01": "eth0", "52:54:00:aa:00:02": "data1"}},
		{name: "no port", json: `{"ifaces":{}}`, err: "port is empty"},
		{name: "bad hwaddr", json: `{"port":"p","ifaces":{"52:54":"eth0"}}`, err: "invalid MAC"},
		{name: "bad name", json: `{"port":"p","ifaces":{"52:54:00:aa:00:01":"a-name-much-too-long"}}`, err: "invalid interface name"},
		{name: "same hwaddr", json: `{"port":"p","ifaces":{"52:54:00:aa:00:01":"eth0","52:54:00:AA:00:01":"eth1"}}`, err: "listed twice"},
		{name: "same name", json: `{"port":"p","ifaces":{"52:54:00:aa:00:01":"eth0","52:54:00:aa:00:02":"eth0"}}`, err: "both want name"},
		{name: "not json", json: `{`, err: "parse VM config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vm.json")
			require.NoError(t, os.WriteFile(path, []byte(tc.json), 0o644))
			cfg, err := loadVMConfig(path)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ifaces, cfg.Ifaces)
			assert.Equal(t, "h1", cfg.Hostname)
			assert.Equal(t, "lnst.agent", cfg.Port)
		})
	}
	_, err := loadVMConfig(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestVMConfigMgmt: a guest with a management NIC (the libvirt
// provisioner's) needs no virtio-serial port, and its NIC's hwaddr comes
// back canonical, as the renames compare them.
func TestVMConfigMgmt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vm.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"hostname":"h1","mgmt":{"hwaddr":"52:54:00:AA:00:09","name":"lnstmgmt","addr":"198.19.201.11/24","port":7000,"ca":"/lnst/tls/ca.pem","cert":"/lnst/tls/agent.pem","key":"/lnst/tls/agent-key.pem"}}`), 0o644))
	cfg, err := loadVMConfig(path)
	require.NoError(t, err)
	require.NotNil(t, cfg.Mgmt)
	assert.Equal(t, "52:54:00:aa:00:09", cfg.Mgmt.HWAddr)
	assert.Equal(t, 7000, cfg.Mgmt.Port)

	require.NoError(t, os.WriteFile(path, []byte(`{"mgmt":{"hwaddr":"52:54","name":"m"}}`), 0o644))
	_, err = loadVMConfig(path)
	require.ErrorContains(t, err, "management NIC")
}

// testApplyRenames runs plan on links (name -> hwaddr), failing on a
// rename of a missing link or onto a taken name, and returns the result.
func testApplyRenames(t *testing.T, links map[string]string, plan []rename) map[string]string {
	t.Helper()
	got := maps.Clone(links)
	for _, r := range plan {
		hw, ok := got[r.from]
		require.True(t, ok, "rename %s -> %s: no link %s in %v", r.from, r.to, r.from, got)
		_, taken := got[r.to]
		require.False(t, taken, "rename %s -> %s: name taken in %v", r.from, r.to, got)
		require.Less(t, len(r.to), unix.IFNAMSIZ, "name %q too long", r.to)
		delete(got, r.from)
		got[r.to] = hw
	}
	return got
}

func TestPlanRenames(t *testing.T) {
	const a, b, c, d = "52:54:00:00:00:0a", "52:54:00:00:00:0b", "52:54:00:00:00:0c", "52:54:00:00:00:0d"
	for _, tc := range []struct {
		name          string
		current, want map[string]string
		result        map[string]string // nil: want applied to current
		renames       int
	}{
		{name: "already named", current: map[string]string{"lo": "00:00:00:00:00:00", "eth0": a, "eth1": b},
			want: map[string]string{a: "eth0", b: "eth1"}, renames: 0},
		{name: "swap", current: map[string]string{"lo": "00:00:00:00:00:00", "eth0": a, "eth1": b},
			want: map[string]string{a: "eth1", b: "eth0"}, renames: 4},
		{name: "rotate", current: map[string]string{"eth0": a, "eth1": b, "eth2": c},
			want: map[string]string{a: "eth1", b: "eth2", c: "eth0"}, renames: 6},
		{name: "partly named", current: map[string]string{"eth0": a, "eth1": b, "eth2": c},
			want: map[string]string{a: "eth0", b: "data", c: "eth1"}, renames: 4},
		{name: "unlisted link in the way", current: map[string]string{"eth0": a, "eth1": b, "lnsttmp0": d},
			want:   map[string]string{b: "eth0"},
			result: map[string]string{"lnsttmp1": a, "eth0": b, "lnsttmp0": d}, renames: 3},
		{name: "nothing wanted", current: map[string]string{"eth0": a}, want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := planRenames(tc.current, tc.want)
			require.NoError(t, err)
			assert.Len(t, plan, tc.renames, "plan %v", plan)
			got := testApplyRenames(t, tc.current, plan)
			if tc.result != nil {
				assert.Equal(t, tc.result, got)
				return
			}
			for hw, name := range tc.want {
				assert.Equal(t, hw, got[name], "link %s", name)
			}
			assert.Len(t, got, len(tc.current))
		})
	}
}

func TestPlanRenamesErrors(t *testing.T) {
	const a, b = "52:54:00:00:00:0a", "52:54:00:00:00:0b"
	_, err := planRenames(map[string]string{"eth0": a}, map[string]string{a: "eth0", b: "eth1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no link has hwaddr "+b)
	_, err = planRenames(map[string]string{"eth0": a, "eth1": a}, map[string]string{a: "eth0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "links eth0 and eth1 both have hwaddr "+a)
}

// testRenameHost makes a namespace host of its own for a test that
// renames links, or skips the test when not root.
func testRenameHost(t *testing.T) *host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("renaming links requires root (it runs in a network namespace of its own)")
	}
	h, err := newNamespaceHost("rename", false)
	require.NoError(t, err)
	t.Cleanup(h.close)
	return h
}

func testMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	mac, err := net.ParseMAC(s)
	require.NoError(t, err)
	return mac
}

func TestRenameLinks(t *testing.T) {
	h := testRenameHost(t)
	const a, b, c, d, e = "52:54:00:00:00:0a", "52:54:00:00:00:0b", "52:54:00:00:00:0c", "52:54:00:00:00:0d", "52:54:00:00:00:0e"
	add := func(l netlink.Link) {
		t.Helper()
		require.NoError(t, h.nl.LinkAdd(l), "add %s", l.Attrs().Name)
	}
	add(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: testMAC(t, a)}, PeerName: "eth1", PeerHardwareAddr: testMAC(t, b)})
	add(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth2", HardwareAddr: testMAC(t, c)}, PeerName: "keep", PeerHardwareAddr: testMAC(t, d)})
	eth1, err := h.nl.LinkByName("eth1")
	require.NoError(t, err)
	require.NoError(t, h.nl.LinkSetUp(eth1))
	// The last NIC appears while nameLinks waits.
	late := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "late", HardwareAddr: testMAC(t, e)}, PeerName: "late-peer"}
	lateErr := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() { lateErr <- h.nl.LinkAdd(late) })

	want := map[string]string{a: "eth1", b: "eth0", e: "eth2"} // c is unlisted, in e's way
	require.NoError(t, nameLinks(h.nl, want, 5*time.Second, hclog.NewNullLogger()))
	require.NoError(t, testRecv(t, lateErr, "late link"), "add late link")

	links, err := h.nl.LinkList()
	require.NoError(t, err)
	got := map[string]string{}
	for _, l := range links {
		got[l.Attrs().HardwareAddr.String()] = l.Attrs().Name
		if _, listed := want[l.Attrs().HardwareAddr.String()]; listed {
			assert.Zero(t, l.Attrs().Flags&net.FlagUp, "%s left up", l.Attrs().Name)
		}
	}
	for hw, name := range want {
		assert.Equal(t, name, got[hw], "link with hwaddr %s", hw)
	}
	assert.Equal(t, "keep", got[d], "unlisted link out of the way")
	assert.Regexp(t, `^lnsttmp\d+$`, got[c], "unlisted link in the way")
}

func TestRenameLinksMissing(t *testing.T) {
	h := testRenameHost(t)
	err := nameLinks(h.nl, map[string]string{"52:54:00:00:00:0f": "eth0"}, 300*time.Millisecond, hclog.NewNullLogger())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no link has hwaddr 52:54:00:00:00:0f")
}
