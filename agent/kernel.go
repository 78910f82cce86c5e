package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/cpio"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// kexecLoadedFile says whether a kernel is loaded for kexec ("1").
const kexecLoadedFile = "/sys/kernel/kexec_loaded"

// kexecLoaded reports whether a kernel is loaded for kexec.
func kexecLoaded() bool {
	b, err := os.ReadFile(kexecLoadedFile)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// LoadKernel loads a kernel with kexec_file_load, so that the next Reboot
// boots it once. The host's root must be an initramfs (a VM lab guest):
// the new kernel's initramfs is this root, read back file by file, with
// req.Modules as /usr/lib/modules/<release>. It journals nothing: the
// loaded kernel is booted by the next reboot or dropped with unload (the
// controller does either at cleanup), and a reboot of any kind forgets it.
func (s *Server) LoadKernel(_ context.Context, req *pb.LoadKernelRequest) (*pb.LoadKernelReply, error) {
	if s.lab {
		return nil, status.Error(codes.FailedPrecondition, "load kernel: this is a lab agent; its hosts are network namespaces sharing one kernel")
	}
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	if req.Host != "" {
		return nil, status.Errorf(codes.FailedPrecondition, "load kernel: host %q is a network namespace; load the kernel on the agent's own host (\"\")", req.Host)
	}
	running := runningRelease()
	if req.Unload {
		if err := unix.KexecFileLoad(-1, -1, "", unix.KEXEC_FILE_UNLOAD); err != nil {
			return nil, failed(fmt.Errorf("unload kexec kernel: %w", err))
		}
		s.log.Info("kexec kernel unloaded")
		return &pb.LoadKernelReply{Running: running}, nil
	}
	if req.Kernel == "" || req.Release == "" {
		return nil, invalid(errors.New("load kernel: kernel and release are required"))
	}
	if strings.ContainsAny(req.Release, "/ \t\n") || req.Release == "." || req.Release == ".." {
		return nil, invalid(fmt.Errorf("load kernel: invalid release %q", req.Release))
	}
	if err := rootIsInitramfs(); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	cmdline := req.Cmdline
	if cmdline == "" {
		b, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return nil, failed(fmt.Errorf("load kernel: %w", err))
		}
		cmdline = strings.TrimSpace(string(b))
	}
	size, err := s.kexecLoad(req, cmdline)
	if err != nil {
		return nil, err
	}
	s.log.Info("kexec kernel loaded", "kernel", req.Kernel, "release", req.Release, "initrd_bytes", size, "cmdline", cmdline)
	return &pb.LoadKernelReply{Running: running, InitrdBytes: size}, nil
}

// kexecLoad writes the initramfs for req and loads req.Kernel with it.
func (s *Server) kexecLoad(req *pb.LoadKernelRequest, cmdline string) (int64, error) {
	kernel, err := os.Open(req.Kernel)
	if err != nil {
		return 0, invalid(fmt.Errorf("load kernel: %w", err))
	}
	defer kernel.Close()
	if req.Modules != "" {
		if fi, err := os.Stat(req.Modules); err != nil || !fi.IsDir() {
			return 0, invalid(fmt.Errorf("load kernel: modules %s is not a directory (%v)", req.Modules, err))
		}
	}
	// The state disk, where there is one, keeps the archive out of RAM
	// until the kernel reads it.
	dir := os.TempDir()
	if mounted(vmStateDir) {
		dir = vmStateDir
	}
	f, err := os.CreateTemp(dir, "kexec-initrd-*.cpio")
	if err != nil {
		return 0, failed(fmt.Errorf("load kernel: %w", err))
	}
	defer os.Remove(f.Name())
	defer f.Close()
	files, err := rootFiles("/", req.Modules, req.Release)
	if err != nil {
		return 0, failed(fmt.Errorf("load kernel: read the root: %w", err))
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := cpio.Write(w, files); err != nil {
		return 0, failed(fmt.Errorf("load kernel: write initramfs %s: %w", f.Name(), err))
	}
	if err := w.Flush(); err != nil {
		return 0, failed(fmt.Errorf("load kernel: write initramfs %s: %w", f.Name(), err))
	}
	fi, err := f.Stat()
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return 0, failed(fmt.Errorf("load kernel: write initramfs %s: %w", f.Name(), err))
	}
	// kexec_file_load refuses a file open for writing (ETXTBSY).
	initrd, err := os.Open(f.Name())
	if err != nil {
		return 0, failed(fmt.Errorf("load kernel: %w", err))
	}
	defer initrd.Close()
	if err := unix.KexecFileLoad(int(kernel.Fd()), int(initrd.Fd()), cmdline, 0); err != nil {
		return 0, failed(fmt.Errorf("load kernel %s (kexec_file_load, initramfs of %d bytes): %w", req.Kernel, fi.Size(), err))
	}
	return fi.Size(), nil
}

// runningRelease is uname -r.
func runningRelease() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// rootIsInitramfs fails unless / is the initramfs's rootfs (ramfs or
// tmpfs): only then is the running system a set of files that can be
// packed into the next kernel's initramfs.
func rootIsInitramfs() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return fmt.Errorf("load kernel: statfs /: %w", err)
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("load kernel: kexec with an initramfs built from the root requires a host whose root is an initramfs (a VM lab guest); this root is file system type %#x", st.Type)
	}
	return nil
}

// mounted reports whether dir is a mount point (another device than its
// parent).
func mounted(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// rootFiles lists the files of the file system mounted on root, for an
// initramfs: mount points under it are kept as empty directories (what is
// mounted there, /proc, /sys, /dev, /tmp, the state disk, is not this
// boot's to pass on); /dev/console and /dev/null are added, as the kernel
// and init need them before devtmpfs is mounted; modules, if not "", goes
// to /usr/lib/modules/<release>.
func rootFiles(root, modules, release string) ([]cpio.File, error) {
	var rootSt unix.Stat_t
	if err := unix.Lstat(root, &rootSt); err != nil {
		return nil, err
	}
	var files []cpio.File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		f, skipDir, err := rootFile(p, "/"+rel, rootSt.Dev)
		if err != nil {
			return err
		}
		if f.Path != "" {
			files = append(files, f)
		}
		if skipDir {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	files = append(files,
		cpio.File{Path: "/dev", Mode: os.ModeDir | 0o755},
		cpio.File{Path: "/dev/console", Mode: os.ModeDevice | os.ModeCharDevice | 0o600, DevMajor: 5, DevMinor: 1},
		cpio.File{Path: "/dev/null", Mode: os.ModeDevice | os.ModeCharDevice | 0o666, DevMajor: 1, DevMinor: 3},
	)
	if modules == "" {
		return files, nil
	}
	dst := "/usr/lib/modules/" + release
	err = filepath.WalkDir(modules, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(modules, p)
		f, _, err := rootFile(p, filepath.Join(dst, rel), 0)
		if err == nil && f.Path != "" {
			files = append(files, f)
		}
		return err
	})
	return files, err
}

// rootFile is the archive entry of the file at p, named name. A directory
// on another device than dev (0: any) is a mount point: it is kept empty
// (skipDir). Sockets, fifos and devices are left out (no entry).
func rootFile(p, name string, dev uint64) (f cpio.File, skipDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return f, false, fmt.Errorf("stat %s: %w", p, err)
	}
	perm := os.FileMode(st.Mode & 0o777)
	if st.Mode&unix.S_ISUID != 0 {
		perm |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		perm |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		perm |= os.ModeSticky
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return cpio.File{Path: name, Mode: os.ModeDir | perm}, dev != 0 && st.Dev != dev, nil
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return f, false, err
		}
		return cpio.File{Path: name, Mode: os.ModeSymlink | perm, Data: []byte(target)}, false, nil
	case unix.S_IFREG:
		return cpio.File{Path: name, Mode: perm, Src: p}, false, nil
	}
	return f, false, nil
}
