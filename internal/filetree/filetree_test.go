package filetree

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// copyTree sends src into a Receiver writing dst, chunk by chunk.
func copyTree(t *testing.T, src string, r *Receiver) error {
	t.Helper()
	var chunks []*pb.FileChunk
	err := Send(src, nil, func(c *pb.FileChunk) error {
		if len(c.Data) > ChunkSize {
			t.Errorf("chunk of %d bytes", len(c.Data))
		}
		if n := proto.Size(&pb.PutFileRequest{Chunk: c}); n > 1<<20 {
			t.Errorf("chunk message of %d bytes: over gRPC's 1 MiB buffer tier", n)
		}
		chunks = append(chunks, keep(c))
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if err := r.Receive(c); err != nil {
			r.Abort()
			return err
		}
	}
	return r.Finish()
}

// keep copies a chunk to keep past send's return: Send reuses the data's
// buffer.
func keep(c *pb.FileChunk) *pb.FileChunk { return proto.Clone(c).(*pb.FileChunk) }

func TestModeBits(t *testing.T) {
	for _, b := range []uint32{0, 0o644, 0o755, 0o4755, 0o2750, 0o1777, 0o7777} {
		assert.Equal(t, b, modeBits(fileMode(b)), "%04o", b)
	}
}

func TestMergeAndChanges(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "old", "new"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "old", "f"), []byte("new"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "old", "new", "g"), []byte("g"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(src, "old"), 0o700))

	dst := filepath.Join(t.TempDir(), "dst")
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "old"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dst, "old", "f"), []byte("old"), 0o600))
	type change struct {
		path    string
		existed bool
	}
	var changes []change
	r := &Receiver{Dest: dst, Change: func(p string, existed bool, apply func() error) error {
		changes = append(changes, change{p, existed})
		return apply()
	}}
	require.NoError(t, copyTree(t, src, r))
	require.Len(t, changes, 3, "%v", changes)
	assert.Equal(t, change{filepath.Join(dst, "old", "f"), true}, changes[0], "a replaced file")
	assert.Regexp(t, `^`+regexp.QuoteMeta(filepath.Join(dst, "old", ".lnst-put-new-")), changes[1].path, "the new subtree's temporary directory")
	assert.Equal(t, change{filepath.Join(dst, "old", "new"), false}, changes[2], "the top of the new subtree, put in place; nothing inside it")
	left, err := filepath.Glob(filepath.Join(dst, "old", ".lnst-put-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary name is left")
	fi, err := os.Stat(filepath.Join(dst, "old"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm(), "a merged directory keeps its mode")
	b, err := os.ReadFile(filepath.Join(dst, "old", "new", "g"))
	require.NoError(t, err)
	assert.Equal(t, "g", string(b))
	assert.Equal(t, 2, r.Files)
}

func TestSendRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	err := Send(dir, nil, func(*pb.FileChunk) error { return nil })
	assert.ErrorContains(t, err, "only files, directories and symlinks are copied")
}

func TestReceiverTypeConflicts(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	r := &Receiver{Dest: filepath.Join(dir, "d")}
	assert.ErrorContains(t, r.Receive(&pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_SYMLINK, Target: "x"}}), "is a directory: a symlink cannot replace it")
	r = &Receiver{Dest: filepath.Join(dir, "f")}
	assert.ErrorContains(t, r.Receive(&pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_DIR}}), "exists and is not a directory")
	r = &Receiver{Dest: filepath.Join(dir, "f")}
	assert.ErrorIs(t, r.Finish(), ErrBadStream, "nothing received")
}

func TestSendSharedBySource(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	big := make([]byte, 3*ChunkSize+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	require.NoError(t, os.WriteFile(filepath.Join(src, "big"), big, 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(src, "small"), []byte("small"), 0o600))

	var chunks []*pb.FileChunk
	require.NoError(t, SendShared(src, func(c *pb.FileChunk) error { chunks = append(chunks, keep(c)); return nil }))
	var sourced, data int
	for _, c := range chunks {
		if c.Entry != nil && c.Entry.Source != "" {
			sourced++
			assert.Equal(t, filepath.Join(src, "big"), c.Entry.Source)
		}
		data += len(c.Data)
	}
	assert.Equal(t, 1, sourced, "the file bigger than a chunk goes by its path")
	assert.Equal(t, len("small"), data, "only the small file's data is sent")

	dst := filepath.Join(t.TempDir(), "dst")
	r := &Receiver{Dest: dst, AllowSource: true}
	for _, c := range chunks {
		require.NoError(t, r.Receive(c))
	}
	require.NoError(t, r.Finish())
	got, err := os.ReadFile(filepath.Join(dst, "big"))
	require.NoError(t, err)
	assert.Equal(t, big, got)
	fi, err := os.Stat(filepath.Join(dst, "big"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm())
	assert.Equal(t, int64(len(big)+len("small")), r.Bytes)
}

func TestReceiverRefusesAnotherSource(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, make([]byte, 2*ChunkSize), 0o644))
	require.NoError(t, os.WriteFile(b, make([]byte, 2*ChunkSize), 0o644))
	var entry *pb.FileEntry
	require.NoError(t, SendShared(a, func(c *pb.FileChunk) error { entry = c.Entry; return nil }))
	require.NotNil(t, entry)

	// The receiver sees another file at the source path: it does not
	// share the sender's filesystem.
	require.NoError(t, os.Rename(b, a))
	dst := filepath.Join(dir, "dst")
	r := &Receiver{Dest: dst, AllowSource: true}
	err := r.Receive(&pb.FileChunk{Entry: entry})
	assert.ErrorContains(t, err, "is not the file the sender has")
	r.Abort()
	left, _ := filepath.Glob(filepath.Join(dir, ".lnst-put-*"))
	assert.Empty(t, left, "no temporary file is left")

	entry.Source = "relative/path"
	r = &Receiver{Dest: dst, AllowSource: true}
	assert.ErrorIs(t, r.Receive(&pb.FileChunk{Entry: entry}), ErrBadStream)
	r.Abort()
	r = &Receiver{Dest: dst, AllowSource: true}
	entry.Source = a
	_ = r.Receive(&pb.FileChunk{Entry: entry})
	assert.ErrorIs(t, r.Receive(&pb.FileChunk{Data: []byte("x")}), ErrBadStream, "data for a file that has a source")
	r.Abort()
}

// TestNewSubtreeAppearsWhole: a new directory is in place only after
// Finish, with all of its tree; cut short, it leaves nothing.
func TestNewSubtreeAppearsWhole(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "a", "b"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a", "b", "f"), []byte("f"), 0o600))
	require.NoError(t, os.Symlink("b/f", filepath.Join(src, "a", "l")))
	var chunks []*pb.FileChunk
	require.NoError(t, Send(src, nil, func(c *pb.FileChunk) error { chunks = append(chunks, keep(c)); return nil }))

	dir := t.TempDir()
	dst := filepath.Join(dir, "dst")
	r := &Receiver{Dest: dst}
	for _, c := range chunks {
		require.NoError(t, r.Receive(c))
	}
	_, err := os.Lstat(dst)
	assert.ErrorIs(t, err, fs.ErrNotExist, "not in place before Finish")
	require.NoError(t, r.Finish())
	b, err := os.ReadFile(filepath.Join(dst, "a", "l"))
	require.NoError(t, err)
	assert.Equal(t, "f", string(b))
	fi, err := os.Stat(filepath.Join(dst, "a", "b"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o750), fi.Mode().Perm())

	// Cut short: Abort removes the temporary subtree.
	cut := filepath.Join(dir, "cut")
	r = &Receiver{Dest: cut}
	for _, c := range chunks[:3] {
		require.NoError(t, r.Receive(c))
	}
	r.Abort()
	left, err := filepath.Glob(filepath.Join(dir, ".lnst-put-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "nothing left of a put cut short")

	// Something appeared at the place meanwhile: Finish does not replace it.
	r = &Receiver{Dest: filepath.Join(dir, "raced")}
	for _, c := range chunks {
		require.NoError(t, r.Receive(c))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "raced"), 0o755))
	assert.ErrorIs(t, r.Finish(), fs.ErrExist)
	r.Abort()
	left, err = filepath.Glob(filepath.Join(dir, ".lnst-put-*"))
	require.NoError(t, err)
	assert.Empty(t, left)
}

// TestSendChunks: files of several chunks and of a few bytes, one after
// another through the one reused buffer (grown on the way), arrive whole,
// each first chunk with its entry within a 1 MiB message however long the
// entry's path.
func TestSendChunks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	long := filepath.Join(src, strings.Repeat("d", 200), strings.Repeat("e", 200))
	require.NoError(t, os.MkdirAll(long, 0o755))
	want := map[string][]byte{}
	for i, size := range []int{1, 0, ChunkSize - 1, ChunkSize, 2*ChunkSize + 17, 5} {
		data := make([]byte, size)
		for k := range data {
			data[k] = byte(k*7 + i)
		}
		rel := filepath.Join(strings.Repeat("d", 200), strings.Repeat("e", 200), fmt.Sprintf("%s%d", strings.Repeat("f", 200), i))
		require.NoError(t, os.WriteFile(filepath.Join(src, rel), data, 0o640))
		want[rel] = data
	}
	dst := filepath.Join(t.TempDir(), "dst")
	r := &Receiver{Dest: dst}
	require.NoError(t, copyTree(t, src, r))
	assert.Equal(t, len(want), r.Files)
	for rel, data := range want {
		got, err := os.ReadFile(filepath.Join(dst, rel))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got), "%s: the data differs", rel)
	}
}

// TestSendProcFile: a file of /proc/sys says its size is 0 and gives its
// value only to one read from its start: it arrives whole.
func TestSendProcFile(t *testing.T) {
	const p = "/proc/sys/kernel/pid_max"
	want, err := os.ReadFile(p)
	require.NoError(t, err, "every Linux kernel has %s", p)
	require.GreaterOrEqual(t, len(want), 2, "%s holds a number and a newline", p)
	dst := filepath.Join(t.TempDir(), "pid_max")
	require.NoError(t, copyTree(t, p, &Receiver{Dest: dst}))
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}
