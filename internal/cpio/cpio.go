// Package cpio writes cpio archives in the "newc" format the Linux kernel
// unpacks as an initramfs. It is a leaf: the VM image builder writes the
// base image with it, the controller appends a run's files, and a VM
// guest's agent writes the initramfs of a kernel it loads with kexec.
package cpio

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// File is one entry of an archive written by Write.
type File struct {
	// Path is the path inside the archive; a leading "/" is dropped.
	Path string
	// Mode holds the permission bits and, for a directory or a symbolic
	// link, os.ModeDir or os.ModeSymlink. Zero permission bits mean 0644
	// for a file, 0755 for a directory and 0777 for a link.
	Mode os.FileMode
	// Data is the content of a regular file or the target of a link.
	Data []byte
	// Src, used when Data is nil for a regular file, names a host file
	// whose content is streamed into the archive.
	Src string
	// DevMajor and DevMinor are the device numbers of a character device
	// (Mode has os.ModeDevice|os.ModeCharDevice), such as /dev/console.
	DevMajor, DevMinor uint32
}

// newc mode bits.
const (
	cpioRegular = 0o100000
	cpioDir     = 0o040000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

// Write writes files as an uncompressed cpio archive in the "newc"
// format the Linux kernel unpacks, ending with the TRAILER!!! entry. Parent
// directories missing from files are added (mode 0755) before their first
// child.
//
// The kernel unpacks concatenated archives in order, so an archive written
// here can be appended to the base initramfs. An entry replaces an existing
// one of another type: in the base image /bin, /sbin, /lib and /lib64 are
// symbolic links to usr/..., so per-run files belong under /lnst or /usr,
// never under those four.
func Write(w io.Writer, files []File) error {
	cw := &cpioWriter{w: bufio.NewWriterSize(w, 1<<16), ino: 1, seen: map[string]bool{}}
	for _, e := range files {
		if err := cw.add(e); err != nil {
			return err
		}
	}
	if err := cw.header("TRAILER!!!", 0, 0, 0, 0, 0); err != nil {
		return err
	}
	// Pad the archive to 512 bytes like cpio(1); the kernel skips zeros
	// between concatenated archives.
	if err := cw.pad(512); err != nil {
		return err
	}
	return cw.w.Flush()
}

type cpioWriter struct {
	w    *bufio.Writer
	n    int64 // bytes written
	ino  uint32
	seen map[string]bool // paths written, to add missing parents once
}

func cleanName(p string) (string, error) {
	name := strings.TrimLeft(path.Clean("/"+p), "/")
	if name == "" || name == "." {
		return "", fmt.Errorf("cpio: invalid path %q", p)
	}
	return name, nil
}

func (cw *cpioWriter) add(e File) error {
	name, err := cleanName(e.Path)
	if err != nil {
		return err
	}
	if err := cw.parents(name); err != nil {
		return err
	}
	cw.seen[name] = true
	perm := uint32(e.Mode.Perm())
	if e.Mode&os.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if e.Mode&os.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if e.Mode&os.ModeSticky != 0 {
		perm |= 0o1000
	}
	switch {
	case e.Mode&os.ModeDir != 0:
		return cw.header(name, cpioDir|orPerm(perm, 0o755), 2, 0, 0, 0)
	case e.Mode&os.ModeSymlink != 0:
		if err := cw.header(name, cpioSymlink|orPerm(perm, 0o777), 1, int64(len(e.Data)), 0, 0); err != nil {
			return err
		}
		return cw.body(e.Data)
	case e.Mode&os.ModeCharDevice != 0:
		return cw.header(name, cpioCharDev|orPerm(perm, 0o600), 1, 0, e.DevMajor, e.DevMinor)
	case e.Mode&os.ModeType != 0:
		return fmt.Errorf("cpio: %s: unsupported file type %v", name, e.Mode.Type())
	}
	mode := cpioRegular | orPerm(perm, 0o644)
	if e.Data != nil || e.Src == "" {
		if err := cw.header(name, mode, 1, int64(len(e.Data)), 0, 0); err != nil {
			return err
		}
		return cw.body(e.Data)
	}
	return cw.stream(name, mode, e.Src)
}

func orPerm(perm, def uint32) uint32 {
	if perm&0o777 == 0 {
		return perm | def
	}
	return perm
}

// parents emits directory entries for the parents of name not yet written.
func (cw *cpioWriter) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." || cw.seen[dir] {
		return nil
	}
	if err := cw.parents(dir); err != nil {
		return err
	}
	cw.seen[dir] = true
	return cw.header(dir, cpioDir|0o755, 2, 0, 0, 0)
}

func (cw *cpioWriter) stream(name string, mode uint32, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cpio: %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cpio: %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("cpio: %s: source %s is not a regular file", name, src)
	}
	if err := cw.header(name, mode, 1, st.Size(), 0, 0); err != nil {
		return err
	}
	n, err := io.Copy(cw.w, io.LimitReader(f, st.Size()))
	cw.n += n
	if err != nil {
		return fmt.Errorf("cpio: %s: copy %s: %w", name, src, err)
	}
	if n != st.Size() {
		return fmt.Errorf("cpio: %s: %s shrank while being copied", name, src)
	}
	return cw.pad(4)
}

func (cw *cpioWriter) header(name string, mode, nlink uint32, size int64, rmaj, rmin uint32) error {
	if size > 0xffffffff {
		return fmt.Errorf("cpio: %s: %d bytes is too large for newc", name, size)
	}
	ino := cw.ino
	cw.ino++
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, uint32(size), 0, 0, rmaj, rmin, len(name)+1, 0)
	if err := cw.write([]byte(h)); err != nil {
		return err
	}
	if err := cw.write(append([]byte(name), 0)); err != nil {
		return err
	}
	return cw.pad(4)
}

func (cw *cpioWriter) body(b []byte) error {
	if err := cw.write(b); err != nil {
		return err
	}
	return cw.pad(4)
}

func (cw *cpioWriter) write(b []byte) error {
	n, err := cw.w.Write(b)
	cw.n += int64(n)
	return err
}

func (cw *cpioWriter) pad(align int64) error {
	if r := cw.n % align; r != 0 {
		return cw.write(make([]byte, align-r))
	}
	return nil
}
