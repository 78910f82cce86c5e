package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/filetree"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Files on hosts: PutFile, GetFile and TempDir.
//
// A namespace host of the lab shares the machine's filesystem: only its
// /sys differs (it shows the host's network namespace). Files put on one
// lab host are seen by every lab host and by the machine. Every path
// syscall still runs on the host's thread (host.do), so that /sys and
// /proc read as the host sees them.
//
// What a put creates is journaled as remove-path undo entries: one for the
// top of each new subtree (removing it removes everything under it) and
// one per file or symlink replaced, whose old self the agent saved first
// as a backup (a hard link in its backup directory, or a copy when that is
// on another filesystem) and puts back. Each entry is reserved, and so on
// disk for the agent's own host, before its change is made.
//
// The backup directory is the agent's alone (owned by its user, mode 0700,
// not a symlink; see backupDir), and a backup is put back only while it is
// the file the agent saved: the entry records its device, inode and owner
// (backupID) and undoPath refuses a backup that differs, leaving both it
// and the file at the path as they are.

// fileState is the Server's state for files and reboots.
type fileState struct {
	// backupMu serialises making backups with removing the emptied backup
	// directory.
	backupMu sync.Mutex
	// tmpBackups is the backup directory of an agent without an on-disk
	// journal: made by os.MkdirTemp (mode 0700, a name no one can guess)
	// at the first backup, again when it was removed emptied.
	tmpBackups string
	// reboot reboots the machine; nil runs systemctl reboot or reboot.
	// Tests replace it.
	reboot func() error
}

// checkHostPath checks that p is an absolute, clean path.
func checkHostPath(p string) error {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q is not an absolute, clean path", p)
	}
	return nil
}

// checkPutPath checks the destination of a put: an absolute, clean path
// outside the kernel's /proc and /sys (Sysctl and WriteSysfs change those).
func checkPutPath(p string) error {
	if err := checkHostPath(p); err != nil {
		return err
	}
	for _, k := range []string{"/proc", "/sys"} {
		if p == k || strings.HasPrefix(p, k+"/") {
			return fmt.Errorf("path %q is under %s, a kernel filesystem: files cannot be put there (set values with Sysctl or WriteSysfs)", p, k)
		}
	}
	return nil
}

// PutFile writes a file or tree on a host.
func (s *Server) PutFile(stream grpc.ClientStreamingServer[pb.PutFileRequest, pb.PutFileReply]) error {
	first, err := stream.Recv()
	if err == io.EOF {
		return invalid(errors.New("put file: the stream is empty"))
	}
	if err != nil {
		return err
	}
	if err := checkPutPath(first.Path); err != nil {
		return invalid(fmt.Errorf("put file on %s: %w", hostLabel(first.Host), err))
	}
	if n := first.Name; n != "" && (strings.ContainsAny(n, "/\x00") || n == "." || n == "..") {
		return invalid(fmt.Errorf("put %s on %s: name %q is not a file name", first.Path, hostLabel(first.Host), n))
	}
	h, err := s.host(first.Host)
	if err != nil {
		return err
	}
	dest := first.Path
	var fi fs.FileInfo
	if h.do(func() (err error) { fi, err = os.Stat(dest); return err }) == nil && fi.IsDir() {
		if first.Name == "" {
			return invalid(fmt.Errorf("put %s on %s: it is a directory and the request has no name to put into it", dest, hostLabel(first.Host)))
		}
		dest = filepath.Join(dest, first.Name)
	}
	var seq uint64
	// The stream comes from the agent's controller, which may run
	// anything here as the agent's user: it may name a file of this
	// machine as a file's data (a controller on the same machine sends
	// big files so) and put setuid programs, and no limit applies but
	// the filesystem's.
	r := &filetree.Receiver{Dest: dest, Do: h.do, Change: s.pathChange(h, first.Host, first.Group, &seq),
		AllowSource: true, KeepSetID: true, MaxBytes: -1}
	err = receive(stream, r, first.Chunk)
	if err == nil {
		err = r.Finish()
	}
	if err != nil {
		r.Abort()
		err = fmt.Errorf("put %s on %s: %w", dest, hostLabel(first.Host), err)
		if errors.Is(err, filetree.ErrBadStream) {
			return invalid(err)
		}
		if _, ok := status.FromError(err); ok {
			return err
		}
		return failed(err)
	}
	s.log.Debug("put file", "host", first.Host, "path", dest, "files", r.Files, "bytes", r.Bytes)
	return stream.SendAndClose(&pb.PutFileReply{Path: dest, Seq: seq, Files: int32(r.Files), Bytes: r.Bytes})
}

// receive feeds the stream's chunks to r, starting with first's. A
// goroutine receives the next chunks while r writes one: gRPC's copies of
// a chunk (gathering its frames, unmarshaling it) overlap the write to
// the file, and the peer gets its flow-control credit back sooner.
// recvAhead chunks wait at most, each up to filetree.ChunkSize.
func receive(stream grpc.ClientStreamingServer[pb.PutFileRequest, pb.PutFileReply], r *filetree.Receiver, first *pb.FileChunk) error {
	if first != nil {
		if err := r.Receive(first); err != nil {
			return err
		}
	}
	type recvd struct {
		c   *pb.FileChunk
		err error
	}
	ch := make(chan recvd, recvAhead)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			req, err := stream.Recv()
			var c *pb.FileChunk
			if err == nil {
				c = req.Chunk
			}
			select {
			case ch <- recvd{c, err}:
			case <-done:
				// r failed: the handler returns, which ends the stream.
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for m := range ch {
		switch {
		case m.err == io.EOF:
			return nil
		case m.err != nil:
			return m.err
		case m.c != nil:
			if err := r.Receive(m.c); err != nil {
				return err
			}
		}
	}
	return nil
}

// recvAhead is how many chunks receive takes from the stream ahead of
// the one being written.
const recvAhead = 2

// pathChange returns the Change function of a put or TempDir on host h:
// it backs up what a change replaces, journals the change's undo ahead,
// makes the change, and sets *seq to the first entry's sequence number.
func (s *Server) pathChange(h *host, hostName, group string, seq *uint64) func(string, bool, func() error) error {
	return func(path string, existed bool, apply func() error) error {
		u := undo{Group: group, Op: opRemovePath, Host: hostName, Path: path}
		if existed {
			b, id, err := s.backup(h, path)
			if err != nil {
				return fmt.Errorf("back up %s before replacing it: %w", path, err)
			}
			u.Backup, u.BackupID = b, &id
		}
		u, err := s.journal.reserve(u)
		if err != nil {
			s.dropBackup(h, u.Backup)
			return unjournaled(err)
		}
		if err := apply(); err != nil {
			s.abandon(u)
			s.dropBackup(h, u.Backup)
			return err
		}
		u = s.recordMade(h, u)
		s.journal.commit(u)
		if *seq == 0 {
			*seq = u.Seq
		}
		return nil
	}
}

// recordMade records in u what its change made at u.Path (see
// undopath.go), in memory and, for an entry on disk, in the journal: the
// undo removes nothing else. Without a record (the path cannot be read)
// the undo leaves the path alone.
func (s *Server) recordMade(h *host, u undo) undo {
	var fi fs.FileInfo
	if err := h.do(func() (err error) { fi, err = os.Lstat(u.Path); return err }); err != nil {
		s.log.Error("journal: what a change made cannot be read; its undo will leave it alone", "path", u.Path, "error", err)
		return u
	}
	u.Made = madeIDOf(fi)
	if err := s.journal.amend(u); err != nil {
		s.log.Error("journal: record what a change made; after a crash its undo would leave it alone", "path", u.Path, "seq", u.Seq, "error", err)
	}
	return u
}

// backupDir makes, or checks, the directory where the agent keeps the
// files a put replaced, and returns it: next to its on-disk journal, so
// that they outlive the agent with it, or a directory of its own made by
// os.MkdirTemp. Either must be the agent's alone (checkBackupDir): a
// backup is renamed back over a file as the agent's user, so whoever
// could write in the directory would choose what that file becomes.
// s.files.backupMu is held.
func (s *Server) backupDir(h *host) (string, error) {
	s.journal.mu.Lock()
	f := s.journal.file
	s.journal.mu.Unlock()
	if f != nil {
		dir := filepath.Join(filepath.Dir(f.path), "lnst-backups")
		err := h.do(func() error {
			if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return checkBackupDir(dir)
		})
		return dir, err
	}
	if dir := s.files.tmpBackups; dir != "" {
		err := h.do(func() error { return checkBackupDir(dir) })
		if !errors.Is(err, fs.ErrNotExist) {
			return dir, err
		}
	}
	var dir string
	err := h.do(func() (err error) {
		dir, err = os.MkdirTemp("", fmt.Sprintf("lnst-agent-%d-backups-", os.Getpid()))
		if err == nil {
			err = checkBackupDir(dir)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	s.files.tmpBackups = dir
	return dir, nil
}

// backupDirName is the directory backupDir keeps backups in, without
// making or checking it: "" for an agent without an on-disk journal that
// has made no backup yet.
func (s *Server) backupDirName() string {
	s.journal.mu.Lock()
	f := s.journal.file
	s.journal.mu.Unlock()
	if f != nil {
		return filepath.Join(filepath.Dir(f.path), "lnst-backups")
	}
	s.files.backupMu.Lock()
	defer s.files.backupMu.Unlock()
	return s.files.tmpBackups
}

// checkBackupDir checks that the backup directory dir is the agent's
// alone: a directory (not a symlink to one), owned by the agent's
// effective user, with no access for group or others.
func checkBackupDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	euid := os.Geteuid()
	switch {
	case !fi.IsDir():
		return fmt.Errorf("backup directory %s is a %v, not a directory", dir, fi.Mode().Type())
	case !ok || int(st.Uid) != euid:
		return fmt.Errorf("backup directory %s is not owned by the agent's user (uid %d): refusing to keep backups in it", dir, euid)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("backup directory %s has mode %04o: refusing to keep backups in it while group or others have access (it must be 0700)", dir, fi.Mode().Perm())
	}
	return nil
}

// backupID is how a backup was when the agent made it: its device,
// inode and owner. It is journaled with the backup, and before the
// backup is put back the file at its path must still be this one.
type backupID struct {
	Dev, Ino uint64
	UID      uint32
}

// statBackupID returns the backupID of the file or symlink at p.
func statBackupID(p string) (backupID, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return backupID{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return backupID{Dev: uint64(st.Dev), Ino: st.Ino, UID: st.Uid}, nil
}

// checkBackup checks, before the backup b of path is put back, that it
// is the file the agent saved: in a directory that is the agent's alone
// and, when the journal has id (entries of agents before backupID have
// not), with the device, inode and owner recorded.
func checkBackup(path, b string, id *backupID) error {
	if err := checkBackupDir(filepath.Dir(b)); err != nil {
		return fmt.Errorf("refusing to put %s back from backup %s: %w", path, b, err)
	}
	got, err := statBackupID(b)
	if err != nil {
		return fmt.Errorf("the backup of %s is lost: %w", path, err)
	}
	if id != nil && got != *id {
		return fmt.Errorf("refusing to put %s back from backup %s: it is not the file the agent saved (device %d, inode %d, owner uid %d; saved device %d, inode %d, owner uid %d); both are left as they are",
			path, b, got.Dev, got.Ino, got.UID, id.Dev, id.Ino, id.UID)
	}
	return nil
}

// randomName is a fresh name with a prefix.
func randomName(prefix string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// backup saves the file or symlink at path in the backup directory and
// returns the backup's path and how it is (to check before putting it
// back).
func (s *Server) backup(h *host, path string) (string, backupID, error) {
	s.files.backupMu.Lock()
	defer s.files.backupMu.Unlock()
	dir, err := s.backupDir(h)
	if err != nil {
		return "", backupID{}, err
	}
	name, err := randomName("")
	if err != nil {
		return "", backupID{}, err
	}
	b := filepath.Join(dir, name+"-"+filepath.Base(path))
	var id backupID
	err = h.do(func() error {
		err := os.Link(path, b)
		if errors.Is(err, syscall.EXDEV) {
			err = copyPath(path, b)
		}
		if err != nil {
			return err
		}
		id, err = statBackupID(b)
		if err != nil {
			os.Remove(b)
		}
		return err
	})
	if err != nil {
		return "", backupID{}, err
	}
	return b, id, nil
}

// dropBackup removes a backup that is not needed.
func (s *Server) dropBackup(h *host, b string) {
	if b == "" {
		return
	}
	s.files.backupMu.Lock()
	defer s.files.backupMu.Unlock()
	h.do(func() error {
		os.Remove(b)
		os.Remove(filepath.Dir(b)) // only when empty
		return nil
	})
}

// copyPath copies a file or symlink to dst (which must not exist), with
// its mode, owner and times.
func copyPath(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is a %v: only files and symlinks are backed up", src, fi.Mode().Type())
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && err == nil {
		err = out.Chown(int(st.Uid), int(st.Gid))
	}
	if err == nil {
		err = out.Chmod(fi.Mode())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, fi.ModTime(), fi.ModTime())
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// undoPath takes back a put or TempDir: it removes what the agent made at
// u.Path (only that: see undopath.go) and, with a backup, puts the backup
// back. A namespace host that is gone left
// its files on the machine's filesystem: they are removed all the same.
func (s *Server) undoPath(u undo) error {
	s.mu.Lock()
	h := s.hosts[u.Host]
	if h == nil {
		h = s.hosts[""]
	}
	s.mu.Unlock()
	do := func(f func() error) error { return f() }
	if h != nil {
		do = h.do
	}
	if err := s.checkUndoPath(u); err != nil {
		return err
	}
	if u.Backup == "" {
		return do(func() error { return removeMade(u.Path, u.Made) })
	}
	s.files.backupMu.Lock()
	defer s.files.backupMu.Unlock()
	return do(func() error {
		if err := checkBackup(u.Path, u.Backup, u.BackupID); err != nil {
			return err
		}
		if err := clearForBackup(u.Path, u.Made); err != nil {
			return err
		}
		err := os.Rename(u.Backup, u.Path)
		if errors.Is(err, syscall.EXDEV) {
			err = copyBack(u.Backup, u.Path)
		}
		if err != nil {
			return err
		}
		os.Remove(filepath.Dir(u.Backup)) // only when empty
		return nil
	})
}

// copyBack copies a backup on another filesystem back to path,
// atomically, and removes it.
func copyBack(backup, path string) error {
	tmp, err := randomName(filepath.Join(filepath.Dir(path), ".lnst-restore-"))
	if err != nil {
		return err
	}
	if err := copyPath(backup, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(backup)
}

// GetFile reads a file or tree of a host.
func (s *Server) GetFile(req *pb.GetFileRequest, stream grpc.ServerStreamingServer[pb.FileChunk]) error {
	if err := checkHostPath(req.Path); err != nil {
		return invalid(fmt.Errorf("get file from host %q: %w", req.Host, err))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return err
	}
	err = filetree.Send(req.Path, h.do, stream.Send)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return status.Errorf(codes.NotFound, "get %s from host %q: %v", req.Path, req.Host, err)
	case stream.Context().Err() != nil:
		return status.FromContextError(stream.Context().Err()).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return failed(fmt.Errorf("get %s from host %q: %w", req.Path, req.Host, err))
}

// TempDir makes a new directory under the agent's temporary directory.
func (s *Server) TempDir(_ context.Context, req *pb.TempDirRequest) (*pb.TempDirReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	var seq uint64
	change := s.pathChange(h, req.Host, req.Group, &seq)
	for range 10 {
		p, err := randomName(filepath.Join(os.TempDir(), "lnst-tmp-"))
		if err != nil {
			return nil, failed(err)
		}
		err = change(p, false, func() error { return h.do(func() error { return os.Mkdir(p, 0o700) }) })
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			if _, ok := status.FromError(err); ok {
				return nil, err
			}
			return nil, failed(fmt.Errorf("make a temporary directory on %s: %w", hostLabel(req.Host), err))
		}
		return &pb.TempDirReply{Path: p, Seq: seq}, nil
	}
	return nil, status.Errorf(codes.Aborted, "make a temporary directory on %s: every name tried exists", hostLabel(req.Host))
}
