// Package filetree copies a file or a whole tree as a stream of
// agentpb.FileChunk messages: Send reads one, a Receiver writes one. Modes
// (permission bits, sticky, and setuid and setgid when the Receiver is
// told to keep them) are kept and symlinks are copied as symlinks; each
// file and symlink is written to a temporary name and renamed into place,
// so a reader never sees half of it. The agent uses it for PutFile and
// GetFile on its hosts, the controller (lnsttest) for the other end.
//
// A Receiver's zero options are for a stream from a peer it does not
// trust with its own machine (the controller receiving GetFile from an
// agent): no entry may name a local file as its data, setuid and setgid
// bits are cleared, and the stream's data is limited to DefaultMaxBytes.
// Only the agent's PutFile, whose stream comes from its controller, turns
// AllowSource and KeepSetID on.
package filetree

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ChunkSize is the most data one chunk carries: 1 MiB less room for the
// messages that wrap it (a FileChunk in a PutFileRequest), so that a
// chunk's message fills, without passing, the 1 MiB tier of gRPC's
// buffer pool. gRPC marshals each message into a pooled buffer, and
// gathers each one received into another, zeroing the whole buffer
// first: a 64 KiB chunk cleared a 1 MiB buffer twice, which cost more
// than the data's own copies; a chunk a little over 1 MiB would leave
// the pool for a fresh allocation each time. It is well under gRPC's
// default 4 MiB limit on a received message.
const ChunkSize = 1<<20 - chunkRoom

// chunkRoom is the room left in a 1 MiB message for what wraps a chunk's
// data: two fields' tags and lengths, with margin.
const chunkRoom = 64

// minRead is the least a file's first read asks for.
const minRead = 64 << 10

// sharedMin is the size above which SendShared sends a file by its path.
const sharedMin = 64 << 10

// doFunc runs a function that resolves paths: the agent runs them on a host's
// thread, where the host's mounts are. nil runs them directly.
type doFunc func(f func() error) error

func (d doFunc) run(f func() error) error {
	if d == nil {
		return f()
	}
	return d(f)
}

// ErrBadStream marks a stream that breaks the protocol: an entry out of
// order, a path that leaves the root, data without a file, a source the
// Receiver does not allow.
var ErrBadStream = errors.New("bad file stream")

// ErrTooBig marks a stream whose data passes its Receiver's MaxBytes.
var ErrTooBig = errors.New("file stream too big")

// DefaultMaxBytes is the most data (files' data and what sources add) a
// Receiver whose MaxBytes is 0 takes from one stream: 1 GiB.
const DefaultMaxBytes = 1 << 30

func badStream(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadStream, fmt.Sprintf(format, args...))
}

// modeBits keeps what a copy keeps of a mode: the permission bits, setuid,
// setgid and sticky, as the kernel numbers them.
func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// fileMode turns modeBits back into an fs.FileMode for os.Chmod.
func fileMode(b uint32) fs.FileMode {
	m := fs.FileMode(b & 0o777)
	if b&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if b&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if b&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Send reads the file, symlink or tree at root and sends it, parents
// first and directory entries in lexical order. Anything else (a device,
// a fifo, a socket) is an error naming it. The chunks' data is one
// buffer, reused: send must be done with a chunk when it returns, as a
// gRPC stream's Send is (it marshals the message before it returns).
func Send(root string, do doFunc, send func(*pb.FileChunk) error) error {
	s := sender{do: do, send: send}
	return s.entry(root, "")
}

// SendShared sends as Send does, to a receiver that shares this
// process's filesystem (a host of the local lab): a file bigger than
// 64 KiB goes as its path (FileEntry.Source) and the receiver copies
// it in the kernel, as cp does, rather than as data chunks.
func SendShared(root string, send func(*pb.FileChunk) error) error {
	s := sender{send: send, shared: true}
	return s.entry(root, "")
}

type sender struct {
	do     doFunc
	send   func(*pb.FileChunk) error
	shared bool
	// buf holds each chunk's data in turn: send is done with a chunk
	// when it returns (gRPC has marshaled it).
	buf []byte
}

func (s *sender) entry(p, rel string) error {
	var fi fs.FileInfo
	if err := s.do.run(func() (err error) { fi, err = os.Lstat(p); return err }); err != nil {
		return err
	}
	e := &pb.FileEntry{Rel: rel, Mode: modeBits(fi.Mode())}
	switch {
	case fi.Mode().IsRegular():
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && s.shared && fi.Size() > sharedMin {
			abs, err := filepath.Abs(p)
			if err != nil {
				return err
			}
			e.Source, e.SourceDev, e.SourceIno = abs, uint64(st.Dev), st.Ino
			return s.send(&pb.FileChunk{Entry: e})
		}
		return s.file(p, e, fi.Size())
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type = pb.FileEntry_SYMLINK
		if err := s.do.run(func() (err error) { e.Target, err = os.Readlink(p); return err }); err != nil {
			return err
		}
		return s.send(&pb.FileChunk{Entry: e})
	case fi.IsDir():
		e.Type = pb.FileEntry_DIR
		if err := s.send(&pb.FileChunk{Entry: e}); err != nil {
			return err
		}
		var ents []fs.DirEntry
		if err := s.do.run(func() (err error) { ents, err = os.ReadDir(p); return err }); err != nil {
			return err
		}
		for _, d := range ents {
			if err := s.entry(filepath.Join(p, d.Name()), path.Join(rel, d.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s is a %v: only files, directories and symlinks are copied", p, fi.Mode().Type())
}

// file sends a regular file of the given size (as Lstat saw it: it may
// have changed since).
func (s *sender) file(p string, e *pb.FileEntry, size int64) error {
	var f *os.File
	if err := s.do.run(func() (err error) { f, err = os.Open(p); return err }); err != nil {
		return err
	}
	defer f.Close()
	// The buffer grows to the biggest file sent, up to a chunk: a tree of
	// small files does not clear a chunk's worth for each. One byte more
	// than the size ends a file at its size in one read. At least
	// minRead: a file of /proc/sys says its size is 0 and gives its value
	// only to a read from its start, whole.
	if need := int(min(max(size+1, minRead), ChunkSize)); len(s.buf) < need {
		s.buf = make([]byte, max(need, min(2*len(s.buf), ChunkSize)))
	}
	first := true
	for {
		// The first chunk carries the entry too: its data is cut short by
		// the entry's size, so that its message stays within 1 MiB.
		buf := s.buf
		if first {
			buf = buf[:min(len(buf), max(ChunkSize-proto.Size(e), ChunkSize/2))]
		}
		n, err := io.ReadFull(f, buf)
		if n > 0 || first {
			c := &pb.FileChunk{Data: buf[:n]}
			if first {
				c.Entry, first = e, false
			}
			if serr := s.send(c); serr != nil {
				return serr
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return fmt.Errorf("read %s: %w", p, err)
		}
		if len(s.buf) < ChunkSize {
			// The file grew since Lstat.
			s.buf = make([]byte, min(2*len(s.buf), ChunkSize))
		}
	}
}

// Receiver writes a stream of chunks at Dest. Entries must come parents
// first, each inside a directory of the stream. A directory that exists
// is merged into (its mode is left alone); a file or symlink that exists
// is replaced; a directory is never replaced by a file, nor a file by a
// directory. Missing parents of Dest are made (mode 0755).
//
// A new directory is made under a temporary name next to its place, its
// whole subtree written in it under the final names, and it is renamed
// into place by Finish: a reader sees all of a new subtree or nothing of
// it, and its files cost one create each, not a create and a rename.
type Receiver struct {
	// Dest is where the root goes.
	Dest string
	// Do runs the functions that resolve paths (nil: directly).
	Do doFunc
	// AllowSource lets a file entry name a file of this machine as its
	// data (FileEntry.Source, sent by SendShared): the receiver copies it.
	// Off, such an entry is refused (ErrBadStream): a sender could have
	// any file the receiver can read copied to Dest. Only a receiver whose
	// sender may read its files anyway (the agent's PutFile, from its
	// controller) turns it on. A source must be a regular file, opened
	// without following a symlink or blocking, whose device and inode are
	// the ones the entry names.
	AllowSource bool
	// KeepSetID keeps the setuid and setgid bits of the modes received.
	// Off, they are cleared: a file the sender marks setuid does not
	// become a setuid program of the receiver's user.
	KeepSetID bool
	// MaxBytes is the most data the stream may bring: files' data and
	// what sources add. 0 is DefaultMaxBytes; below 0, no limit. Past it,
	// Receive fails with ErrTooBig naming the limit and the file, leaving
	// the file cut short to Abort.
	MaxBytes int64

	// Change, when set, makes each change of what was at Dest: apply
	// creates path, where nothing was (existed false) or replacing the
	// file or symlink there (existed true). Only the top of each new
	// subtree is a change, twice: made under its temporary name, then
	// renamed into place by Finish; what goes inside a directory the
	// Receiver made is not. The agent journals the changes with it.
	Change func(path string, existed bool, apply func() error) error

	// Files and Bytes count the files written and their data.
	Files int
	Bytes int64

	started bool
	dirs    map[string]*dirState // by rel, each directory received
	cur     *pending
	chmods  []chmod
	// tops are the new subtrees, under their temporary names until
	// Finish renames them into place, in the order they came.
	tops []top
}

// dirState is a directory of the stream as the Receiver has it.
type dirState struct {
	path string // where it is now: under a temporary name in a new subtree
	// hidden: it is in a new subtree, made by the Receiver and not yet in
	// place, where nothing else looks: entries go in it under their own
	// names, unchecked.
	hidden bool
}

// top is a new subtree: made at tmp, to be renamed to path. inCreated: it
// is inside a directory the Receiver made in place (a parent of Dest), so
// it is no change of its own.
type top struct {
	tmp, path string
	inCreated bool
}

type pending struct {
	f         *os.File
	tmp, path string
	// final is where the file goes, as errors name it: path, or where
	// path will be once its new subtree is in place.
	final              string
	mode               uint32
	existed, inCreated bool
	// sourced: the data came from FileEntry.Source; no chunk may add to it.
	sourced bool
	// direct: written under its own name in a new subtree (tmp is path),
	// with nothing to rename.
	direct bool
}

type chmod struct {
	path string
	mode uint32
}

// mode is the mode an entry's file or directory gets: e's, without
// setuid and setgid unless r keeps them.
func (r *Receiver) mode(e *pb.FileEntry) uint32 {
	if r.KeepSetID {
		return e.Mode
	}
	return e.Mode &^ 0o6000
}

// limit is the most data r takes, -1 for no limit.
func (r *Receiver) limit() int64 {
	switch {
	case r.MaxBytes == 0:
		return DefaultMaxBytes
	case r.MaxBytes < 0:
		return -1
	}
	return r.MaxBytes
}

// tooBig is the error of data past the limit, in the file at path.
func (r *Receiver) tooBig(path string) error {
	return fmt.Errorf("%w: %s passes the limit of %d bytes on the stream's data", ErrTooBig, path, r.limit())
}

// Receive writes one chunk.
func (r *Receiver) Receive(c *pb.FileChunk) error {
	if c.Entry != nil {
		if err := r.finishFile(); err != nil {
			return err
		}
		if err := r.start(c.Entry); err != nil {
			return err
		}
	}
	if len(c.Data) == 0 {
		return nil
	}
	if r.cur == nil {
		return badStream("data without a file entry")
	}
	if r.cur.sourced {
		return badStream("data for %s, whose entry names its source", r.cur.path)
	}
	if l := r.limit(); l >= 0 && int64(len(c.Data)) > l-r.Bytes {
		return r.tooBig(r.cur.final)
	}
	if _, err := r.cur.f.Write(c.Data); err != nil {
		return fmt.Errorf("write %s: %w", r.cur.path, err)
	}
	r.Bytes += int64(len(c.Data))
	return nil
}

// Finish puts the last file in place and sets the modes of the
// directories made. It fails if nothing was received.
func (r *Receiver) Finish() error {
	if err := r.finishFile(); err != nil {
		return err
	}
	if !r.started {
		return badStream("no entry received")
	}
	for i := len(r.chmods) - 1; i >= 0; i-- {
		c := r.chmods[i]
		if err := r.Do.run(func() error { return os.Chmod(c.path, fileMode(c.mode)) }); err != nil {
			return fmt.Errorf("set mode %04o of %s: %w", c.mode, c.path, err)
		}
	}
	for len(r.tops) > 0 {
		t := r.tops[0]
		if err := r.change(t.path, false, t.inCreated, func() error { return renameNoReplace(t.tmp, t.path) }); err != nil {
			return fmt.Errorf("put %s in place: %w", t.path, err)
		}
		r.tops = r.tops[1:]
	}
	return nil
}

// renameNoReplace renames old to new, failing if new exists (rename(2)
// would replace an empty directory there).
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: check, then rename.
		if _, err := os.Lstat(new); err == nil {
			return &os.LinkError{Op: "rename", Old: old, New: new, Err: fs.ErrExist}
		}
		return os.Rename(old, new)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

// Abort removes the temporary file of a file cut short and the new
// subtrees not yet in place. What was put in place stays (the agent's
// journal takes it back).
func (r *Receiver) Abort() {
	if r.cur != nil {
		r.cur.f.Close()
		r.Do.run(func() error { return os.Remove(r.cur.tmp) })
		r.cur = nil
	}
	for _, t := range r.tops {
		r.Do.run(func() error { return os.RemoveAll(t.tmp) })
	}
	r.tops = nil
}

// checkRel checks an entry's relative path and returns its parent's.
func (r *Receiver) checkRel(rel string) (string, error) {
	if !r.started {
		if rel != "" {
			return "", badStream("the first entry is %q, not the root", rel)
		}
		return "", nil
	}
	if rel == "" || path.Clean(rel) != rel || !filepath.IsLocal(rel) {
		return "", badStream("entry %q is not a clean relative path inside the root", rel)
	}
	parent := path.Dir(rel)
	if parent == "." {
		parent = ""
	}
	if r.dirs[parent] == nil {
		return "", badStream("entry %q comes before its directory", rel)
	}
	if _, dup := r.dirs[rel]; dup {
		return "", badStream("entry %q comes twice", rel)
	}
	return parent, nil
}

func (r *Receiver) start(e *pb.FileEntry) error {
	parent, err := r.checkRel(e.Rel)
	if err != nil {
		return err
	}
	if e.Source != "" && !r.AllowSource {
		return badStream("entry %q names a file of this machine, %q, as its data: this receiver takes data only in the stream", e.Rel, e.Source)
	}
	first := !r.started
	r.started = true
	if r.dirs == nil {
		r.dirs = map[string]*dirState{}
	}
	p := r.Dest
	inCreated := false
	if first {
		if inCreated, err = r.makeParents(); err != nil {
			return err
		}
	} else {
		pd := r.dirs[parent]
		p = filepath.Join(pd.path, path.Base(e.Rel))
		if pd.hidden {
			return r.startHidden(e, p)
		}
	}
	var fi fs.FileInfo
	err = r.Do.run(func() (err error) { fi, err = os.Lstat(p); return err })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	existed := err == nil
	if existed && (fi.IsDir() != (e.Type == pb.FileEntry_DIR)) {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory: a %s cannot replace it", p, typeName(e.Type))
		}
		return fmt.Errorf("%s exists and is not a directory", p)
	}
	switch e.Type {
	case pb.FileEntry_DIR:
		if existed {
			r.dirs[e.Rel] = &dirState{path: p}
			return nil
		}
		// A new subtree: made under a temporary name, put in place whole
		// by Finish. The temporary directory is a change of its own, so
		// that a put cut short leaves nothing behind.
		tmp, err := r.tmpName(p)
		if err != nil {
			return err
		}
		if err := r.change(tmp, false, inCreated, func() error { return os.Mkdir(tmp, 0o700) }); err != nil {
			return err
		}
		r.tops = append(r.tops, top{tmp: tmp, path: p, inCreated: inCreated})
		r.dirs[e.Rel] = &dirState{path: tmp, hidden: true}
		r.chmods = append(r.chmods, chmod{tmp, r.mode(e)})
		return nil
	case pb.FileEntry_SYMLINK:
		tmp, err := r.tmpName(p)
		if err != nil {
			return err
		}
		if err := r.Do.run(func() error { return os.Symlink(e.Target, tmp) }); err != nil {
			return fmt.Errorf("make symlink %s: %w", p, err)
		}
		return r.place(tmp, p, existed, inCreated)
	case pb.FileEntry_FILE:
		var f *os.File
		err := r.Do.run(func() (err error) {
			f, err = os.CreateTemp(filepath.Dir(p), tmpPrefix(p))
			return err
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		r.cur = &pending{f: f, tmp: f.Name(), path: p, final: p, mode: r.mode(e), existed: existed, inCreated: inCreated}
		if e.Source != "" {
			r.cur.sourced = true
			return r.copySource(e)
		}
		return nil
	}
	return badStream("entry %q has unknown type %v", e.Rel, e.Type)
}

// startHidden starts an entry inside a new subtree, at p under its own
// name: nothing is there, nor is replaced, and nothing is a change.
func (r *Receiver) startHidden(e *pb.FileEntry, p string) error {
	switch e.Type {
	case pb.FileEntry_DIR:
		if err := r.Do.run(func() error { return os.Mkdir(p, 0o700) }); err != nil {
			return err
		}
		r.dirs[e.Rel] = &dirState{path: p, hidden: true}
		r.chmods = append(r.chmods, chmod{p, r.mode(e)})
		return nil
	case pb.FileEntry_SYMLINK:
		if err := r.Do.run(func() error { return os.Symlink(e.Target, p) }); err != nil {
			return fmt.Errorf("make symlink %s: %w", p, err)
		}
		return nil
	case pb.FileEntry_FILE:
		var f *os.File
		err := r.Do.run(func() (err error) {
			f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			return err
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		r.cur = &pending{f: f, tmp: p, path: p, final: filepath.Join(r.Dest, filepath.FromSlash(e.Rel)), mode: r.mode(e), direct: true}
		if e.Source != "" {
			r.cur.sourced = true
			return r.copySource(e)
		}
		return nil
	}
	return badStream("entry %q has unknown type %v", e.Rel, e.Type)
}

// copySource copies the data of a file entry with a source into the
// current file, in the kernel (copy_file_range), after checking that the
// source is the file the sender saw: a regular file (Lstat), opened
// without following a symlink and without blocking (a FIFO put there
// meanwhile does not hang the open), with the entry's device and inode,
// which the opened file (fstat) must have too.
func (r *Receiver) copySource(e *pb.FileEntry) error {
	if !filepath.IsAbs(e.Source) {
		return badStream("entry %q: source %q is not an absolute path", e.Rel, e.Source)
	}
	notSame := func(what string) error {
		return fmt.Errorf("copy %s from its source: %s here is not the file the sender has (%s): the two ends do not share a filesystem", r.cur.path, e.Source, what)
	}
	var src *os.File
	var fi fs.FileInfo
	err := r.Do.run(func() error {
		lfi, err := os.Lstat(e.Source)
		if err != nil {
			return err
		}
		if !lfi.Mode().IsRegular() {
			return notSame(fmt.Sprintf("it is a %v", lfi.Mode().Type()))
		}
		fd, err := unix.Open(e.Source, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: e.Source, Err: err}
		}
		src = os.NewFile(uintptr(fd), e.Source)
		if fi, err = src.Stat(); err != nil {
			return err
		}
		if !os.SameFile(lfi, fi) {
			return notSame("it changed while it was opened")
		}
		return nil
	})
	if src != nil {
		defer src.Close()
	}
	if err != nil {
		return fmt.Errorf("copy %s from its source: %w", r.cur.path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || uint64(st.Dev) != e.SourceDev || st.Ino != e.SourceIno || !fi.Mode().IsRegular() {
		return notSame("device and inode differ")
	}
	var from io.Reader = src
	if l := r.limit(); l >= 0 {
		if fi.Size() > l-r.Bytes {
			return r.tooBig(r.cur.final)
		}
		// The source may grow while it is copied: one byte past the limit
		// tells.
		from = &io.LimitedReader{R: src, N: l - r.Bytes + 1}
	}
	n, err := r.cur.f.ReadFrom(from)
	r.Bytes += n
	if err != nil {
		return fmt.Errorf("copy %s from %s: %w", r.cur.path, e.Source, err)
	}
	if l := r.limit(); l >= 0 && r.Bytes > l {
		return r.tooBig(r.cur.final)
	}
	return nil
}

func typeName(t pb.FileEntry_Type) string {
	switch t {
	case pb.FileEntry_SYMLINK:
		return "symlink"
	case pb.FileEntry_DIR:
		return "directory"
	}
	return "file"
}

// makeParents makes the missing parents of Dest, if any (made is true);
// the topmost one made is a change.
func (r *Receiver) makeParents() (made bool, err error) {
	parent := filepath.Dir(r.Dest)
	top := ""
	for d := parent; ; d = filepath.Dir(d) {
		err := r.Do.run(func() error { _, err := os.Lstat(d); return err })
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		top = d
		if d == filepath.Dir(d) {
			break
		}
	}
	if top == "" {
		return false, nil
	}
	return true, r.change(top, false, false, func() error { return os.MkdirAll(parent, 0o755) })
}

func tmpPrefix(p string) string { return ".lnst-put-" + filepath.Base(p) + "-" }

// tmpName is a free temporary name next to p.
func (r *Receiver) tmpName(p string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), tmpPrefix(p)+hex.EncodeToString(b[:])), nil
}

// change makes a change through r.Change unless it is inside a directory
// the Receiver made.
func (r *Receiver) change(p string, existed, inCreated bool, apply func() error) error {
	do := func() error { return r.Do.run(apply) }
	if r.Change == nil || inCreated {
		return do()
	}
	return r.Change(p, existed, do)
}

// place renames tmp to p.
func (r *Receiver) place(tmp, p string, existed, inCreated bool) error {
	err := r.change(p, existed, inCreated, func() error { return os.Rename(tmp, p) })
	if err != nil {
		r.Do.run(func() error { return os.Remove(tmp) })
		return fmt.Errorf("put %s in place: %w", p, err)
	}
	return nil
}

func (r *Receiver) finishFile() error {
	c := r.cur
	if c == nil {
		return nil
	}
	r.cur = nil
	err := c.f.Chmod(fileMode(c.mode))
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Do.run(func() error { return os.Remove(c.tmp) })
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	if !c.direct {
		if err := r.place(c.tmp, c.path, c.existed, c.inCreated); err != nil {
			return err
		}
	}
	r.Files++
	return nil
}
