package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SysinfoSnapshot reads a host's counters in one call: the link
// statistics and ethtool -S of each named interface, the host's
// /proc/net/snmp, snmp6 and netstat (its network namespace's) and the
// machine's /proc/net/softnet_stat; with req.Facts also what does not
// change while the agent runs. What cannot be read is named in Errors;
// the rest is still returned.
func (s *Server) SysinfoSnapshot(_ context.Context, req *pb.SysinfoRequest) (*pb.SysinfoReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	r := &pb.SysinfoReply{Counters: map[string]uint64{}}
	fail := func(err error) { r.Errors = append(r.Errors, err.Error()) }
	var links []netlink.Link
	for _, name := range req.Ifaces {
		l, err := h.nl.LinkByName(name)
		if err != nil {
			fail(fmt.Errorf("link %s on %s: %w", name, h.label(), err))
			continue
		}
		links = append(links, l)
		linkCounters(r.Counters, name, l.Attrs().Statistics)
	}
	files := map[string][]byte{}
	err = h.do(func() error {
		if len(req.Ifaces) > 0 {
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
					r.Counters["ethtool/"+name+"/"+k] = v
				}
			}
		}
		// /proc/net is the namespace of the process's main thread;
		// thread-self is this (the host's) thread's.
		for _, f := range []string{"snmp", "snmp6", "netstat", "softnet_stat"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				fail(err)
				continue
			}
			files[f] = b
		}
		return nil
	})
	if err != nil {
		return nil, failed(err)
	}
	parseNetstat(r.Counters, "snmp", files["snmp"])
	parseNetstat(r.Counters, "netstat", files["netstat"])
	parseSnmp6(r.Counters, files["snmp6"])
	parseSoftnet(r.Counters, files["softnet_stat"])
	if req.Facts {
		r.Facts = sysFacts()
		for _, l := range links {
			r.Facts.Nics = append(r.Facts.Nics, h.nic(l))
		}
	}
	return r, nil
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
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
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
