package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/cpulist"
	"golang.org/x/sys/unix"
)

// Interrupt affinity: a device's interrupts are its MSI/MSI-X vectors
// (msi_irqs of its bus device), each named in /proc/irq/<n>/ by the
// directory its driver's action made ("virtio2-input.0", "eth0-TxRx-3").
// Interrupts are the machine's: an undo of a change in a namespace host is
// journaled on the agent's own host (""), so that it is kept on disk and
// made even after the namespace host is gone.

// procIRQ is where the kernel shows interrupts.
const procIRQ = "/proc/irq"

// nicPaths are where a server finds interrupts and the online CPUs; the
// zero value is the kernel's (a benchmark points them at a fake tree).
type nicPaths struct {
	procIRQ   string // "" is /proc/irq
	cpuOnline string // "" is /sys/devices/system/cpu/online
	sysNet    string // "" is /sys/class/net (SR-IOV's sriov_numvfs)
}

// devDir is the bus device directory of network device name.
func (p nicPaths) devDir(name string) string {
	root := p.sysNet
	if root == "" {
		root = "/sys/class/net"
	}
	return filepath.Join(root, name, "device")
}

func (p nicPaths) irqDir() string {
	if p.procIRQ == "" {
		return procIRQ
	}
	return p.procIRQ
}

func (p nicPaths) online() string {
	if p.cpuOnline == "" {
		return "/sys/devices/system/cpu/online"
	}
	return p.cpuOnline
}

// irqAffinityPath is the file of interrupt n's CPU list under dir.
func irqAffinityPath(dir string, n uint32) string {
	return dir + "/" + strconv.FormatUint(uint64(n), 10) + "/smp_affinity_list"
}

// irqNumber reads an interrupt number: decimal digits only.
func irqNumber(key string) (uint32, error) {
	if key == "" || strings.TrimLeft(key, "0123456789") != "" || (len(key) > 1 && key[0] == '0') {
		return 0, fmt.Errorf("interrupt %q is not a number", key)
	}
	n, err := strconv.ParseUint(key, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("interrupt %q: %w", key, err)
	}
	return uint32(n), nil
}

// queueOfIRQ reads what an interrupt's action name says of its queue:
// its number and whether it is an rx, tx or combined queue; -1 and ""
// when it names none ("virtio2-config", "mlx5_async17@pci:...").
var queueRe = regexp.MustCompile(`(?i)(txrx|combined|comp|fp|rx|tx|input|output|queue)[-._]?([0-9]+)(@.*)?$`)

func queueOfIRQ(name string) (int32, string) {
	m := queueRe.FindStringSubmatch(name)
	if m == nil {
		return -1, ""
	}
	q, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return -1, ""
	}
	switch strings.ToLower(m[1]) {
	case "rx", "input":
		return int32(q), "rx"
	case "tx", "output":
		return int32(q), "tx"
	case "queue":
		return int32(q), ""
	}
	return int32(q), "combined"
}

// irqName is the action name of interrupt n: the directory under
// /proc/irq/<n>/ its driver made ("" when none; several joined by ",").
func (p nicPaths) irqName(n uint32) string {
	ents, err := os.ReadDir(filepath.Join(p.irqDir(), strconv.FormatUint(uint64(n), 10)))
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return strings.Join(names, ",")
}

// deviceIRQs lists the interrupt numbers of device name: the msi_irqs of
// its bus device or of that device's parent (a virtio device's PCI
// function). Run on the host's thread, so that /sys shows its devices.
func deviceIRQs(name string) ([]uint32, error) {
	dev := filepath.Join("/sys/class/net", name, "device")
	// Not filepath.Join for the parent: ".." must follow the symlink.
	for _, dir := range []string{filepath.Join(dev, "msi_irqs"), dev + "/../msi_irqs"} {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var irqs []uint32
		for _, e := range ents {
			if n, err := irqNumber(e.Name()); err == nil {
				irqs = append(irqs, n)
			}
		}
		slices.Sort(irqs)
		return irqs, nil
	}
	return nil, nil
}

// NicIrqs lists a device's interrupts with their queues and affinities.
func (s *Server) NicIrqs(_ context.Context, req *pb.LinkRef) (*pb.NicIrqsReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var irqs []uint32
	err = h.do(func() error {
		var err error
		irqs, err = deviceIRQs(req.Name)
		return err
	})
	if err != nil {
		return nil, failed(fmt.Errorf("list interrupts of %q on %s: %w", req.Name, h.label(), err))
	}
	online, err := os.ReadFile(s.nic.online())
	if err != nil {
		return nil, failed(fmt.Errorf("read the online CPUs: %w", err))
	}
	r := &pb.NicIrqsReply{Cpus: strings.TrimSpace(string(online))}
	for _, n := range irqs {
		name := s.nic.irqName(n)
		q, kind := queueOfIRQ(name)
		aff, err := os.ReadFile(irqAffinityPath(s.nic.irqDir(), n))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, failed(fmt.Errorf("read affinity of interrupt %d of %q: %w", n, req.Name, err))
		}
		r.Irqs = append(r.Irqs, &pb.NicIrq{Irq: n, Name: name, Queue: q, Kind: kind, Affinity: strings.TrimSpace(string(aff))})
	}
	return r, nil
}

// SetIrqAffinity sets interrupts' CPU lists. Every list is checked
// against the online CPUs and every old list read before anything is
// written; the undos are journaled before the writes (an undo writes
// back a list that is still there when its write was not made).
func (s *Server) SetIrqAffinity(_ context.Context, req *pb.NicIrqAffinityRequest) (*pb.ChangeReply, error) {
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	if len(req.Cpus) == 0 {
		return nil, invalid(errors.New("set interrupt affinity: no interrupt given"))
	}
	b, err := os.ReadFile(s.nic.online())
	if err != nil {
		return nil, failed(fmt.Errorf("read the online CPUs: %w", err))
	}
	online, err := cpulist.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, failed(fmt.Errorf("read the online CPUs from %s: %w", s.nic.online(), err))
	}
	irqs := slices.Sorted(mapKeys(req.Cpus))
	for _, n := range irqs {
		if err := checkCPUs(n, req.Cpus[n], online); err != nil {
			return nil, invalid(err)
		}
	}
	// Each file is opened once: its old list read, the undos journaled,
	// then the new list written through the same descriptor.
	files := make([]irqFile, 0, len(irqs))
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	undos := make([]undo, 0, len(irqs))
	dir := s.nic.irqDir()
	for _, n := range irqs {
		f, err := openIrqAffinity(dir, n)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, invalid(fmt.Errorf("interrupt %d: the machine has no such interrupt (no %s)", n, irqAffinityPath(dir, n)))
		}
		if err != nil {
			return nil, failed(err)
		}
		files = append(files, f)
		undos = append(undos, undo{Group: req.Group, Op: opIrqAffinity, Key: strconv.FormatUint(uint64(n), 10), Value: f.old})
	}
	first, jerr := s.journal.addBatch(undos)
	for i, n := range irqs {
		if err := files[i].write(req.Cpus[n]); err != nil {
			return nil, failed(err) // the undos journaled write back what is there
		}
	}
	if jerr != nil {
		return nil, failed(fmt.Errorf("the interrupts' CPU lists are set and Restore of group %q sets them back, but their undo is not on disk: %w", req.Group, jerr))
	}
	return &pb.ChangeReply{Seq: first}, nil
}

// checkCPUs checks that list, interrupt n's new CPU list, is a CPU list
// of online CPUs.
func checkCPUs(n uint32, list string, online []int) error {
	want, err := cpulist.Parse(list)
	if err != nil {
		return fmt.Errorf("interrupt %d: %w", n, err)
	}
	if len(want) == 0 {
		return fmt.Errorf("interrupt %d: CPU list %q is empty", n, list)
	}
	for _, c := range want {
		if !slices.Contains(online, c) {
			return fmt.Errorf("interrupt %d: CPU %d of %q is not one of the host's online CPUs %s", n, c, list, cpulist.Format(online))
		}
	}
	return nil
}

// irqFile is an interrupt's open smp_affinity_list and the list it held.
type irqFile struct {
	n   uint32
	fd  int
	old string
}

// openIrqAffinity opens interrupt n's CPU list for reading and writing
// and reads it. Raw system calls: an os.File would try to register a
// regular file with the poller, 64 times per call.
func openIrqAffinity(dir string, n uint32) (irqFile, error) {
	p := irqAffinityPath(dir, n)
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return irqFile{}, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var buf [4096]byte
	k, err := unix.Read(fd, buf[:])
	if err != nil {
		unix.Close(fd)
		return irqFile{}, fmt.Errorf("read affinity of interrupt %d: %w", n, err)
	}
	return irqFile{n: n, fd: fd, old: strings.TrimSpace(string(buf[:max(k, 0)]))}, nil
}

// write writes the new list at the start of the file. /proc/irq takes a
// write at any offset whole, and ignores the truncation; a plain file
// (a fake tree) is cut to the list.
func (f *irqFile) write(cpus string) error {
	if _, err := unix.Seek(f.fd, 0, 0); err != nil {
		return fmt.Errorf("set affinity of interrupt %d to %q: %w", f.n, cpus, err)
	}
	if _, err := unix.Write(f.fd, []byte(cpus)); err != nil {
		return fmt.Errorf("set affinity of interrupt %d to %q: %w", f.n, cpus, err)
	}
	if err := unix.Ftruncate(f.fd, int64(len(cpus))); err != nil {
		return fmt.Errorf("set affinity of interrupt %d to %q: %w", f.n, cpus, err)
	}
	return nil
}

func (f *irqFile) close() { unix.Close(f.fd) }

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// writeIrqAffinity writes interrupt n's CPU list.
func writeIrqAffinity(dir string, n uint32, cpus string) error {
	p := irqAffinityPath(dir, n)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("set affinity of interrupt %d to %q: %w", n, cpus, err)
	}
	_, err = f.WriteString(cpus)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set affinity of interrupt %d to %q: %w", n, cpus, err)
	}
	return nil
}

// undoIrqAffinity writes an interrupt's old CPU list back.
func (s *Server) undoIrqAffinity(u undo) error {
	n, err := irqNumber(u.Key)
	if err != nil {
		return err
	}
	return goneIfMissing(writeIrqAffinity(s.nic.irqDir(), n, u.Value))
}
