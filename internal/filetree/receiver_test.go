package filetree

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests here feed a Receiver with its zero options (as the controller
// receives GetFile) the streams a hostile sender would craft.

// testReceive feeds chunks to r and finishes it; on an error it aborts r
// and returns the error.
func testReceive(r *Receiver, chunks ...*pb.FileChunk) error {
	for _, c := range chunks {
		if err := r.Receive(c); err != nil {
			r.Abort()
			return err
		}
	}
	if err := r.Finish(); err != nil {
		r.Abort()
		return err
	}
	return nil
}

// testNothingAt checks that neither dst nor a temporary name next to it
// is left.
func testNothingAt(t *testing.T, dst string) {
	t.Helper()
	_, err := os.Lstat(dst)
	assert.ErrorIs(t, err, fs.ErrNotExist, "nothing at %s", dst)
	left, err := filepath.Glob(filepath.Join(filepath.Dir(dst), ".lnst-put-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary name left")
}

// testSourceEntry is a file entry naming p, with its device and inode, as
// its data.
func testSourceEntry(t *testing.T, p, rel string) *pb.FileEntry {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(p, &st))
	return &pb.FileEntry{Rel: rel, Type: pb.FileEntry_FILE, Mode: 0o644, Source: p, SourceDev: uint64(st.Dev), SourceIno: st.Ino}
}

// TestReceiverClearsSetID: setuid and setgid bits a stream carries are
// cleared unless the Receiver keeps them; the other bits stay.
func TestReceiverClearsSetID(t *testing.T) {
	chunks := []*pb.FileChunk{
		{Entry: &pb.FileEntry{Type: pb.FileEntry_DIR, Mode: 0o2750}},
		{Entry: &pb.FileEntry{Rel: "suid", Type: pb.FileEntry_FILE, Mode: 0o4755}, Data: []byte("#!/bin/sh\nid\n")},
		{Entry: &pb.FileEntry{Rel: "sgid", Type: pb.FileEntry_FILE, Mode: 0o2711}, Data: []byte("x")},
		{Entry: &pb.FileEntry{Rel: "sticky", Type: pb.FileEntry_DIR, Mode: 0o1777}},
	}
	for _, keep := range []bool{false, true} {
		dst := filepath.Join(t.TempDir(), "got")
		require.NoError(t, testReceive(&Receiver{Dest: dst, KeepSetID: keep}, chunks...))
		want := map[string]uint32{"": 0o750, "suid": 0o755, "sgid": 0o711, "sticky": 0o1777}
		if keep {
			want = map[string]uint32{"": 0o2750, "suid": 0o4755, "sgid": 0o2711, "sticky": 0o1777}
		}
		for rel, mode := range want {
			var st syscall.Stat_t
			require.NoError(t, syscall.Lstat(filepath.Join(dst, rel), &st))
			assert.Equal(t, mode, st.Mode&0o7777, "KeepSetID %v: mode of %q is %04o", keep, rel, st.Mode&0o7777)
		}
	}
	// Into a file that exists, too (replaced by the received one).
	dst := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(dst, nil, 0o644))
	require.NoError(t, testReceive(&Receiver{Dest: dst}, &pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_FILE, Mode: 0o6755}, Data: []byte("x")}))
	fi, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid))
}

// TestReceiverRefusesSource: an entry naming a file of the receiver's
// machine as its data (a secret only root reads, /etc/shadow) is refused
// unless the Receiver allows sources; nothing is copied.
func TestReceiverRefusesSource(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("root:$6$secret"), 0o600))
	sources := []string{secret}
	if _, err := os.Lstat("/etc/shadow"); err == nil {
		sources = append(sources, "/etc/shadow")
	}
	for _, src := range sources {
		dir := t.TempDir()
		// As the root of the stream and inside a tree.
		dst := filepath.Join(dir, "got")
		err := testReceive(&Receiver{Dest: dst}, &pb.FileChunk{Entry: testSourceEntry(t, src, "")})
		assert.ErrorIs(t, err, ErrBadStream, src)
		assert.ErrorContains(t, err, src)
		testNothingAt(t, dst)

		err = testReceive(&Receiver{Dest: dst},
			&pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_DIR, Mode: 0o755}},
			&pb.FileChunk{Entry: testSourceEntry(t, src, "shadow")})
		assert.ErrorIs(t, err, ErrBadStream, src)
		testNothingAt(t, dst)
	}

	// Allowed, it copies (the agent's PutFile from its controller).
	dst := filepath.Join(t.TempDir(), "got")
	require.NoError(t, testReceive(&Receiver{Dest: dst, AllowSource: true}, &pb.FileChunk{Entry: testSourceEntry(t, secret, "")}))
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "root:$6$secret", string(b))
}

// TestReceiverSourceFIFO: a source naming a FIFO (with its true device
// and inode) is an error, returned at once: opening it must not wait for
// a writer. A regression fails after a generous bound rather than hang.
func TestReceiverSourceFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	t.Cleanup(func() {
		// A receiver stuck opening the FIFO for reading is let go.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	for _, allow := range []bool{false, true} {
		dst := filepath.Join(dir, "got")
		done := make(chan error, 1)
		go func() {
			done <- testReceive(&Receiver{Dest: dst, AllowSource: allow}, &pb.FileChunk{Entry: testSourceEntry(t, fifo, "")})
		}()
		select {
		case err := <-done:
			assert.ErrorContains(t, err, fifo, "AllowSource %v", allow)
			if allow {
				assert.ErrorContains(t, err, "not the file the sender has")
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("AllowSource %v: receiving a file whose source is the FIFO %s still runs after 30s: it hangs opening it", allow, fifo)
		}
		testNothingAt(t, dst)
	}
}

// TestReceiverSourceSymlink: a source that is a symlink (to a file of the
// right device and inode) is refused, not followed.
func TestReceiverSourceSymlink(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(f, []byte("f"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(f, link))
	e := testSourceEntry(t, f, "")
	e.Source = link
	dst := filepath.Join(dir, "got")
	err := testReceive(&Receiver{Dest: dst, AllowSource: true}, &pb.FileChunk{Entry: e})
	assert.ErrorContains(t, err, "not the file the sender has")
	testNothingAt(t, dst)
}

// TestReceiverMaxBytes: a stream with more data than the limit fails
// naming the limit and the file, and leaves nothing half-written; so does
// a source bigger than what is left. The zero limit is DefaultMaxBytes.
func TestReceiverMaxBytes(t *testing.T) {
	assert.Equal(t, int64(DefaultMaxBytes), (&Receiver{}).limit())
	assert.Equal(t, int64(-1), (&Receiver{MaxBytes: -1}).limit())

	dir := t.TempDir()
	dst := filepath.Join(dir, "got")
	data := make([]byte, 1000)
	chunks := []*pb.FileChunk{
		{Entry: &pb.FileEntry{Type: pb.FileEntry_DIR, Mode: 0o755}},
		{Entry: &pb.FileEntry{Rel: "a", Type: pb.FileEntry_FILE, Mode: 0o644}, Data: data},
		{Entry: &pb.FileEntry{Rel: "b", Type: pb.FileEntry_FILE, Mode: 0o644}, Data: data},
		{Data: data},
	}
	r := &Receiver{Dest: dst, MaxBytes: 2500}
	err := testReceive(r, chunks...)
	assert.ErrorIs(t, err, ErrTooBig)
	assert.ErrorContains(t, err, "limit of 2500 bytes")
	assert.ErrorContains(t, err, filepath.Join(dst, "b"))
	testNothingAt(t, dst)
	require.NoError(t, testReceive(&Receiver{Dest: dst, MaxBytes: 3000}, chunks...), "exactly the limit")

	// A file replaced in an existing directory: the old one stays whole.
	old := filepath.Join(dir, "old")
	require.NoError(t, os.WriteFile(old, []byte("old"), 0o644))
	file := &pb.FileEntry{Type: pb.FileEntry_FILE, Mode: 0o644}
	require.NoError(t, testReceive(&Receiver{Dest: old, MaxBytes: 1500}, &pb.FileChunk{Entry: file, Data: data}))
	err = testReceive(&Receiver{Dest: old, MaxBytes: 1500}, &pb.FileChunk{Entry: file, Data: data}, &pb.FileChunk{Data: data})
	assert.ErrorIs(t, err, ErrTooBig)
	b, err := os.ReadFile(old)
	require.NoError(t, err)
	assert.Len(t, b, 1000, "the file put before stays whole")
	left, _ := filepath.Glob(filepath.Join(dir, ".lnst-put-*"))
	assert.Empty(t, left)

	src := filepath.Join(dir, "src")
	require.NoError(t, os.WriteFile(src, make([]byte, 5000), 0o644))
	err = testReceive(&Receiver{Dest: dst + "2", AllowSource: true, MaxBytes: 4999}, &pb.FileChunk{Entry: testSourceEntry(t, src, "")})
	assert.ErrorIs(t, err, ErrTooBig)
	assert.ErrorContains(t, err, "limit of 4999 bytes")
	testNothingAt(t, dst+"2")
}
