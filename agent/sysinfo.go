package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SysinfoSnapshot reads the named hosts' counters in one call, each host
// on its own thread: the link statistics and ethtool -S of each named
// interface, the host's /proc/net/snmp, snmp6 and netstat (its network
// namespace's) and the machine's /proc/net/softnet_stat; when asked also
// what does not change while the agent runs, and the kernel log's cursor
// or records. A snapshot kept as a baseline keeps the files as read; the
// snapshot that names it parses only the lines that changed, and returns
// only the counters that did. What cannot be read is named in a host's
// Errors (or KmsgError); the rest is still returned.
func (s *Server) SysinfoSnapshot(_ context.Context, req *pb.SysinfoRequest) (*pb.SysinfoReply, error) {
	hosts := make([]*host, len(req.Hosts))
	bases := make([]*sysSnap, len(req.Hosts))
	for i, hr := range req.Hosts {
		h, err := s.host(hr.Host)
		if err != nil {
			return nil, err
		}
		hosts[i] = h
		if hr.Since != "" {
			if bases[i] = sysBaselines.take(hr.Since); bases[i] == nil {
				return nil, status.Errorf(codes.NotFound, "sysinfo baseline %q of host %q: the agent has no such snapshot (it restarted, or it was used already)", hr.Since, hr.Host)
			}
		}
	}
	r := &pb.SysinfoReply{Hosts: make([]*pb.SysinfoHostReply, len(req.Hosts))}
	var wg sync.WaitGroup
	if req.KmsgCursor || req.KmsgRead != nil {
		wg.Go(func() {
			var err error
			if req.KmsgRead != nil {
				r.Kmsg, err = kmsg.read(req.KmsgRead.Follower, req.KmsgRead.FromSeq)
			} else {
				r.KmsgCursor, err = kmsg.cursor()
			}
			if err != nil {
				r.KmsgError = err.Error()
			}
		})
	}
	for i, hr := range req.Hosts {
		wg.Go(func() { r.Hosts[i] = hosts[i].sysinfo(hr, bases[i]) })
	}
	wg.Wait()
	return r, nil
}

// sysinfo answers one host's part of a SysinfoSnapshot.
func (h *host) sysinfo(req *pb.SysinfoHostRequest, base *sysSnap) *pb.SysinfoHostReply {
	snap, links, errs := h.sysSnapshot(req.Ifaces)
	r := &pb.SysinfoHostReply{Errors: errs}
	if req.Counters {
		r.Counters = snap.counters()
	}
	if base != nil {
		r.Deltas = snap.deltas(base)
	}
	if req.Keep {
		r.Baseline = sysBaselines.put(snap)
	}
	if req.Facts {
		r.Facts = sysFacts()
		for _, l := range links {
			r.Facts.Nics = append(r.Facts.Nics, h.nic(l))
		}
	}
	return r
}

// sysFiles are the /proc/net files a snapshot reads, with the parser of
// their text.
var sysFiles = []struct {
	name  string
	parse func(c map[string]uint64, b []byte)
	// lines is how many lines make one unit its parser reads: 2 for the
	// name and value lines of snmp and netstat.
	lines int
}{
	{"snmp", func(c map[string]uint64, b []byte) { parseNetstat(c, "snmp", b) }, 2},
	{"snmp6", parseSnmp6, 1},
	{"netstat", func(c map[string]uint64, b []byte) { parseNetstat(c, "netstat", b) }, 2},
	{"softnet_stat", parseSoftnet, 1},
}

// sysSnap is a snapshot: the interfaces' counters, parsed, and the
// /proc/net files as read.
type sysSnap struct {
	ifaces map[string]uint64
	files  [][]byte // as sysFiles
}

// sysSnapshot reads the host's counters and the named interfaces'; it
// returns their links too, and what it could not read.
func (h *host) sysSnapshot(ifaces []string) (*sysSnap, []netlink.Link, []string) {
	snap := &sysSnap{ifaces: map[string]uint64{}, files: make([][]byte, len(sysFiles))}
	var errs []string
	fail := func(err error) { errs = append(errs, err.Error()) }
	var links []netlink.Link
	for _, name := range ifaces {
		l, err := h.nl.LinkByName(name)
		if err != nil {
			fail(fmt.Errorf("link %s on %s: %w", name, h.label(), err))
			continue
		}
		links = append(links, l)
		linkCounters(snap.ifaces, name, l.Attrs().Statistics)
	}
	err := h.do(func() error {
		if len(links) > 0 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("ethtool socket: %w", err)
			}
			defer unix.Close(fd)
			for _, l := range links {
				name := l.Attrs().Name
				st, err := ethtool.Stats(fd, name)
				if err != nil {
					fail(err)
					continue
				}
				for k, v := range st {
					snap.ifaces["ethtool/"+name+"/"+k] = v
				}
			}
		}
		// /proc/net is the namespace of the process's main thread;
		// thread-self is this (the host's) thread's.
		buf := make([]byte, 64<<10)
		for i, f := range sysFiles {
			b, err := readProc("/proc/thread-self/net/"+f.name, buf)
			if err != nil {
				fail(err)
				continue
			}
			snap.files[i] = b
			buf = buf[len(b):]
		}
		return nil
	})
	if err != nil {
		fail(err)
	}
	return snap, links, errs
}

// counters is every counter of the snapshot.
func (s *sysSnap) counters() map[string]uint64 {
	c := make(map[string]uint64, len(s.ifaces)+512)
	maps.Copy(c, s.ifaces)
	for i, f := range sysFiles {
		f.parse(c, s.files[i])
	}
	return c
}

// deltas are the counters that changed since base: now minus then. Of
// the files, only the units of lines that differ are parsed.
func (s *sysSnap) deltas(base *sysSnap) map[string]int64 {
	d := map[string]int64{}
	diffCounters(d, base.ifaces, s.ifaces)
	for i, f := range sysFiles {
		then, now := base.files[i], s.files[i]
		if bytes.Equal(then, now) {
			continue
		}
		tl, nl := bytes.SplitAfter(then, []byte("\n")), bytes.SplitAfter(now, []byte("\n"))
		if len(tl) != len(nl) { // lines came or went: parse it all
			a, b := map[string]uint64{}, map[string]uint64{}
			f.parse(a, then)
			f.parse(b, now)
			diffCounters(d, a, b)
			continue
		}
		for j := 0; j < len(nl); j += f.lines {
			k := min(j+f.lines, len(nl))
			tu, nu := bytes.Join(tl[j:k], nil), bytes.Join(nl[j:k], nil)
			if bytes.Equal(tu, nu) {
				continue
			}
			a, b := map[string]uint64{}, map[string]uint64{}
			if f.name == "softnet_stat" {
				// Its CPU is its line's number where the kernel does not
				// print it: parse the lines in place.
				parseSoftnetLine(a, j, tu)
				parseSoftnetLine(b, j, nu)
			} else {
				f.parse(a, tu)
				f.parse(b, nu)
			}
			diffCounters(d, a, b)
		}
	}
	return d
}

// diffCounters adds to d each counter in both then and now that changed.
func diffCounters(d map[string]int64, then, now map[string]uint64) {
	for k, v := range now {
		if old, ok := then[k]; ok && old != v {
			d[k] = int64(v - old)
		}
	}
}

// sysBaselineKeep is how many baselines an agent keeps; the oldest goes
// first (a controller that died never takes its own).
const sysBaselineKeep = 1024

// baselines are the snapshots kept for a later SysinfoSnapshot.
type baselines struct {
	mu    sync.Mutex
	next  uint64
	snaps map[string]*sysSnap
	order []string
}

var sysBaselines = &baselines{snaps: map[string]*sysSnap{}}

func (b *baselines) put(s *sysSnap) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := strconv.FormatUint(b.next, 10)
	b.snaps[id] = s
	b.order = append(b.order, id)
	for len(b.order) > sysBaselineKeep {
		delete(b.snaps, b.order[0])
		b.order = b.order[1:]
	}
	return id
}

func (b *baselines) take(id string) *sysSnap {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.snaps[id]
	delete(b.snaps, id)
	return s
}

// readProc reads a /proc file into buf, in as few reads as it can: a
// seq_file generates its whole text again for each read that does not
// take all of it (os.ReadFile's small first reads cost several). It
// returns the part of buf read into.
func readProc(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf)+4096)...)
		}
		m, err := f.Read(buf[n:])
		n += m
		if err == io.EOF || m == 0 && err == nil {
			return buf[:n:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// linkCounters adds a link's statistics as "link/NAME/FIELD".
func linkCounters(c map[string]uint64, name string, st *netlink.LinkStatistics) {
	if st == nil {
		return
	}
	for k, v := range map[string]uint64{
		"rx_packets": st.RxPackets, "tx_packets": st.TxPackets, "rx_bytes": st.RxBytes, "tx_bytes": st.TxBytes,
		"rx_errors": st.RxErrors, "tx_errors": st.TxErrors, "rx_dropped": st.RxDropped, "tx_dropped": st.TxDropped,
		"multicast": st.Multicast, "collisions": st.Collisions,
		"rx_length_errors": st.RxLengthErrors, "rx_over_errors": st.RxOverErrors, "rx_crc_errors": st.RxCrcErrors,
		"rx_frame_errors": st.RxFrameErrors, "rx_fifo_errors": st.RxFifoErrors, "rx_missed_errors": st.RxMissedErrors,
		"tx_aborted_errors": st.TxAbortedErrors, "tx_carrier_errors": st.TxCarrierErrors, "tx_fifo_errors": st.TxFifoErrors,
		"tx_heartbeat_errors": st.TxHeartbeatErrors, "tx_window_errors": st.TxWindowErrors,
	} {
		c["link/"+name+"/"+k] = v
	}
}

// parseNetstat adds the pairs of lines of /proc/net/snmp or netstat
// ("Ip: Forwarding DefaultTTL ..." then "Ip: 1 64 ...") as
// "PREFIX/Ip/Forwarding". Negative values (Tcp MaxConn -1) are left out.
func parseNetstat(c map[string]uint64, prefix string, b []byte) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) != len(values) || len(names) == 0 || names[0] != values[0] {
			continue
		}
		group := strings.TrimSuffix(names[0], ":")
		for j := 1; j < len(names); j++ {
			if v, err := strconv.ParseUint(values[j], 10, 64); err == nil {
				c[prefix+"/"+group+"/"+names[j]] = v
			}
		}
	}
}

// parseSnmp6 adds /proc/net/snmp6 ("Ip6InReceives 12") as
// "snmp6/Ip6InReceives".
func parseSnmp6(c map[string]uint64, b []byte) {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			c["snmp6/"+f[0]] = v
		}
	}
}

// softnetColumns names the counters of a /proc/net/softnet_stat line;
// the other columns are unused, a gauge or the CPU's number.
var softnetColumns = map[int]string{0: "processed", 1: "dropped", 2: "time_squeeze", 8: "cpu_collision", 9: "received_rps", 10: "flow_limit_count"}

// parseSoftnet adds /proc/net/softnet_stat (hex columns, a line per
// online CPU; column 12, where the kernel has it, is the CPU's number)
// as "softnet/cpuN/NAME".
func parseSoftnet(c map[string]uint64, b []byte) {
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parseSoftnetLine(c, i, []byte(l))
	}
}

// parseSoftnetLine parses line i of /proc/net/softnet_stat.
func parseSoftnetLine(c map[string]uint64, i int, line []byte) {
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return
	}
	cpu := i
	if len(f) > 12 {
		if n, err := strconv.ParseUint(f[12], 16, 32); err == nil {
			cpu = int(n)
		}
	}
	for col, name := range softnetColumns {
		if col < len(f) {
			if v, err := strconv.ParseUint(f[col], 16, 64); err == nil {
				c[fmt.Sprintf("softnet/cpu%d/%s", cpu, name)] = v
			}
		}
	}
}

// sysFacts are the machine's kernel, command line, modules, CPU and NUMA
// layout.
func sysFacts() *pb.SysinfoFacts {
	f := &pb.SysinfoFacts{Cpus: int32(runtime.NumCPU())}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		f.Cmdline = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/modules"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if name, _, ok := strings.Cut(l, " "); ok {
				f.Modules = append(f.Modules, name)
			}
		}
		sort.Strings(f.Modules)
	}
	f.CpuModel = cpuModel()
	nodes, _ := filepath.Glob("/sys/devices/system/node/node[0-9]*")
	for _, dir := range nodes {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "node"))
		if err != nil {
			continue
		}
		node := &pb.SysinfoNuma{Node: int32(n)}
		if b, err := os.ReadFile(filepath.Join(dir, "cpulist")); err == nil {
			node.Cpus = strings.TrimSpace(string(b))
		}
		if b, err := os.ReadFile(filepath.Join(dir, "meminfo")); err == nil {
			node.MemTotalKib = nodeMemTotal(b)
		}
		f.Numa = append(f.Numa, node)
	}
	sort.Slice(f.Numa, func(i, j int) bool { return f.Numa[i].Node < f.Numa[j].Node })
	return f
}

// cpuModel is the CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model", "uarch":
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// nodeMemTotal is MemTotal of a node's meminfo ("Node 0 MemTotal: 123 kB").
func nodeMemTotal(b []byte) int64 {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[2] == "MemTotal:" {
			n, _ := strconv.ParseInt(f[3], 10, 64)
			return n
		}
	}
	return 0
}
