package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/internal/cpulist"
	"github.com/lnst-go/lnst/internal/peercred"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// nicTestServer serves an agent whose interrupts and online CPUs are a
// fake tree: n interrupts (1000, 1001, ...; numbers no machine here has)
// each with smp_affinity_list "0-1", on a 4-CPU machine.
func nicTestServer(tb testing.TB, n int) (*Server, pb.AgentClient, string) {
	tb.Helper()
	dir := tb.TempDir()
	// On tmpfs when there is one, as /proc is in memory: ext4 flushes a
	// file truncated on open at its close, which would time the disk.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "lnst-nic-")
		require.NoError(tb, err)
		tb.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	for i := range n {
		d := filepath.Join(dir, "irq", strconv.Itoa(1000+i))
		require.NoError(tb, os.MkdirAll(filepath.Join(d, fmt.Sprintf("eth9-TxRx-%d", i)), 0o755))
		require.NoError(tb, os.WriteFile(filepath.Join(d, "smp_affinity_list"), []byte("0-1\n"), 0o644))
	}
	require.NoError(tb, os.WriteFile(filepath.Join(dir, "online"), []byte("0-3\n"), 0o644))
	srv, err := NewServer(Options{Lab: true})
	require.NoError(tb, err)
	srv.nic = nicPaths{procIRQ: filepath.Join(dir, "irq"), cpuOnline: filepath.Join(dir, "online")}
	name := fmt.Sprintf("lnst-nic-%d-%d", os.Getpid(), time.Now().UnixNano())
	lis, err := net.Listen("unix", "@"+name)
	require.NoError(tb, err)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(peercred.Restrict(lis, os.Geteuid(), nil))
	conn, err := grpc.NewClient("unix-abstract:"+name, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(tb, err)
	tb.Cleanup(func() {
		conn.Close()
		srv.Shutdown()
		g.Stop()
	})
	return srv, pb.NewAgentClient(conn), filepath.Join(dir, "irq")
}

func readAffinity(t *testing.T, dir string, irq int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(irq), "smp_affinity_list"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestSetIrqAffinityRestored pins interrupts of a fake /proc/irq, one
// CPU each, and finds every old list back after Restore; the undos are
// the agent's own host's, so they outlive the namespace host that asked.
func TestSetIrqAffinityRestored(t *testing.T) {
	_, c, dir := nicTestServer(t, 4)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	r, err := c.SetIrqAffinity(ctx, &pb.NicIrqAffinityRequest{Host: "h1", Group: "g", Cpus: map[uint32]string{1000: "0", 1001: "1", 1002: "2-3", 1003: "3"}})
	require.NoError(t, err)
	assert.NotZero(t, r.Seq)
	assert.Equal(t, "0", readAffinity(t, dir, 1000))
	assert.Equal(t, "2-3", readAffinity(t, dir, 1002))
	assert.Equal(t, "3", readAffinity(t, dir, 1003))
	rr, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	assert.Empty(t, rr.Errors)
	assert.Equal(t, int32(4), rr.Undone)
	for i := range 4 {
		assert.Equal(t, "0-1", readAffinity(t, dir, 1000+i), "interrupt %d restored", 1000+i)
	}

	// Set after its namespace host is gone: still set back.
	_, err = c.SetIrqAffinity(ctx, &pb.NicIrqAffinityRequest{Host: "h1", Group: "g2", Cpus: map[uint32]string{1000: "3"}})
	require.NoError(t, err)
	_, err = c.DestroyHost(ctx, &pb.HostRef{Host: "h1"})
	require.NoError(t, err)
	rr, err = c.Restore(ctx, &pb.RestoreRequest{Group: "g2"})
	require.NoError(t, err)
	assert.Empty(t, rr.Errors)
	assert.Equal(t, "0-1", readAffinity(t, dir, 1000), "restored after its host is gone")
}

// TestSetIrqAffinityBadInput: a CPU the host does not have, a list that
// is no list, an interrupt the machine does not have: each refused before
// anything is written, naming the interrupt and the limit.
func TestSetIrqAffinityBadInput(t *testing.T) {
	_, c, dir := nicTestServer(t, 2)
	ctx := testCtx(t)
	for _, tc := range []struct {
		cpus map[uint32]string
		want []string
	}{
		{map[uint32]string{1000: "0", 1001: "4"}, []string{"interrupt 1001", "CPU 4 of \"4\" is not one of the host's online CPUs 0-3"}},
		{map[uint32]string{1000: "0-9"}, []string{"interrupt 1000", "CPU 4 of \"0-9\"", "online CPUs 0-3"}},
		{map[uint32]string{1000: "one"}, []string{"interrupt 1000", `"one" is not a CPU number`}},
		{map[uint32]string{1000: ""}, []string{"interrupt 1000", "empty"}},
		{map[uint32]string{1000: "1", 7: "1"}, []string{"interrupt 7", "no such interrupt"}},
		{nil, []string{"no interrupt given"}},
	} {
		_, err := c.SetIrqAffinity(ctx, &pb.NicIrqAffinityRequest{Group: "g", Cpus: tc.cpus})
		testCode(t, err, codes.InvalidArgument, tc.want...)
	}
	assert.Equal(t, "0-1", readAffinity(t, dir, 1000), "nothing written")
	assert.Equal(t, "0-1", readAffinity(t, dir, 1001), "nothing written")
}

func TestQueueOfIRQ(t *testing.T) {
	for name, want := range map[string]struct {
		q    int32
		kind string
	}{
		"virtio2-input.0":               {0, "rx"},
		"virtio2-output.3":              {3, "tx"},
		"virtio2-config":                {-1, ""},
		"eth0-TxRx-7":                   {7, "combined"},
		"i40e-enp3s0f0-TxRx-12":         {12, "combined"},
		"mlx5_comp5@pci:0000:3b:00.0":   {5, "combined"},
		"mlx5_async17@pci:0000:3b:00.0": {-1, ""},
		"enp1s0-rx-2":                   {2, "rx"},
		"enp1s0-tx-0":                   {0, "tx"},
		"bnxt_en-fp-3":                  {3, "combined"},
		"":                              {-1, ""},
	} {
		q, kind := queueOfIRQ(name)
		assert.Equal(t, want.q, q, name)
		assert.Equal(t, want.kind, kind, name)
	}
}

func TestValuePathIrq(t *testing.T) {
	p, err := valuePath(kindIrq, "38")
	require.NoError(t, err)
	assert.Equal(t, "/proc/irq/38/smp_affinity_list", p)
	for _, bad := range []string{"", "38/../../sys", "../1", "038", "-1", "1 ", "38/smp_affinity", "4294967296", "a"} {
		_, err := valuePath(kindIrq, bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestNicIrqsReal lists the interrupts of this machine's first device
// that has MSI vectors (read only): every one named, its affinity read.
func TestNicIrqsReal(t *testing.T) {
	_, c := testServer(t)
	ents, err := os.ReadDir("/sys/class/net")
	require.NoError(t, err)
	for _, e := range ents {
		dev := filepath.Join("/sys/class/net", e.Name(), "device")
		if _, err := os.Stat(filepath.Join(dev, "msi_irqs")); err != nil {
			if _, err := os.Stat(dev + "/../msi_irqs"); err != nil {
				continue
			}
		}
		r, err := c.NicIrqs(testCtx(t), &pb.LinkRef{Name: e.Name()})
		require.NoError(t, err)
		require.NotEmpty(t, r.Irqs, e.Name())
		assert.NotEmpty(t, r.Cpus)
		for _, irq := range r.Irqs {
			assert.NotEmpty(t, irq.Affinity, "interrupt %d of %s", irq.Irq, e.Name())
			t.Logf("%s: interrupt %d %q queue %d %s affinity %s", e.Name(), irq.Irq, irq.Name, irq.Queue, irq.Kind, irq.Affinity)
		}
		return
	}
	t.Skip("needs a network device with MSI interrupts (/sys/class/net/*/device/msi_irqs), as a PCI NIC or a VM's virtio-net has: this machine has none (veth has no interrupts)")
}

// BenchmarkIrqPin64 pins 64 interrupts through the agent (one
// SetIrqAffinity call over its unix socket: read the old lists, journal
// the undos, write the new lists) against writing the 64 affinity files
// directly (open with O_TRUNC, write, close each, by raw system calls),
// one of each per iteration,
// alternating which goes first, with a Restore outside the timing. The
// interrupts are a fake /proc/irq on tmpfs (/dev/shm) (the machine here
// has some 20 interrupts, not 64): a real /proc/irq write costs the kernel
// more, which only lowers the ratio.
//
//	RATIO irqpin64/proc_write <x> (min, max, n)
func BenchmarkIrqPin64(b *testing.B) {
	const n = 64
	_, c, dir := nicTestServer(b, n)
	ctx := context.Background()
	var cpus [2]map[uint32]string
	for k := range cpus {
		cpus[k] = map[uint32]string{}
		for i := range n {
			cpus[k][uint32(1000+i)] = strconv.Itoa((i + k) % 4)
		}
	}
	direct := func(k int) time.Duration {
		start := time.Now()
		for irq, list := range cpus[k] {
			fd, err := unix.Open(irqAffinityPath(dir, irq), unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Write(fd, []byte(list)); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
		return time.Since(start)
	}
	viaAgent := func(k int) time.Duration {
		start := time.Now()
		_, err := c.SetIrqAffinity(ctx, &pb.NicIrqAffinityRequest{Group: "bench", Cpus: cpus[k]})
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Restore(ctx, &pb.RestoreRequest{Group: "bench"}); err != nil {
			b.Fatal(err)
		}
		return took
	}
	var agentT, directT []time.Duration
	var a, d time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			d += direct(i % 2)
			a += viaAgent(i % 2)
		} else {
			a += viaAgent(i % 2)
			d += direct(i % 2)
		}
		if i++; i%irqPinRound == 0 {
			agentT, directT = append(agentT, a), append(directT, d)
			a, d = 0, 0
		}
	}
	if i < irqPinRound {
		agentT, directT = append(agentT, a), append(directT, d)
	}
	benchratio.Print("irqpin64/proc_write", benchratio.Ratios(agentT, directT))
}

// irqPinRound is how many pins of each side one round of BenchmarkIrqPin64
// sums.
const irqPinRound = 25

// TestSetIrqAffinityReal moves the config interrupt of this machine's
// first MSI network device (one that fires only on a config change) to
// its last online CPU through the agent, as /proc/irq shows it, and
// finds its old list back after Restore.
func TestSetIrqAffinityReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root to write /proc/irq")
	}
	_, c := testServer(t)
	ctx := testCtx(t)
	ents, err := os.ReadDir("/sys/class/net")
	require.NoError(t, err)
	for _, e := range ents {
		r, err := c.NicIrqs(ctx, &pb.LinkRef{Name: e.Name()})
		if err != nil {
			continue
		}
		for _, irq := range r.Irqs {
			if !strings.HasSuffix(irq.Name, "-config") {
				continue
			}
			online, err := cpulist.Parse(r.Cpus)
			require.NoError(t, err)
			last := strconv.Itoa(online[len(online)-1])
			_, err = c.SetIrqAffinity(ctx, &pb.NicIrqAffinityRequest{Group: "g", Cpus: map[uint32]string{irq.Irq: last}})
			require.NoError(t, err)
			assert.Equal(t, last, readAffinity(t, procIRQ, int(irq.Irq)))
			testRestoreClean(t, c, nil, "g", 1)
			assert.Equal(t, irq.Affinity, readAffinity(t, procIRQ, int(irq.Irq)), "restored")
			return
		}
	}
	t.Skip("needs a virtio-net device with a config interrupt, as a VM has: this machine has none, and the test moves a real interrupt's affinity")
}
