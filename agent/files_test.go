package agent

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/filetree"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// testPut puts the local file or tree at path on host.
func testPut(t *testing.T, c pb.AgentClient, host, group, local, path string) (*pb.PutFileReply, error) {
	t.Helper()
	stream, err := c.PutFile(testCtx(t))
	require.NoError(t, err)
	err = stream.Send(&pb.PutFileRequest{Host: host, Group: group, Path: path, Name: filepath.Base(local)})
	if err == nil {
		err = filetree.Send(local, nil, func(ch *pb.FileChunk) error { return stream.Send(&pb.PutFileRequest{Chunk: ch}) })
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// testPutChunks sends first, then chunks, as a put.
func testPutChunks(t *testing.T, c pb.AgentClient, first *pb.PutFileRequest, chunks ...*pb.FileChunk) error {
	t.Helper()
	stream, err := c.PutFile(testCtx(t))
	require.NoError(t, err)
	if err := stream.Send(first); err != nil && err != io.EOF {
		return err
	}
	for _, ch := range chunks {
		if err := stream.Send(&pb.PutFileRequest{Chunk: ch}); err != nil {
			break // the agent ended the stream; its error follows
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// testGet gets path of host into dest.
func testGet(t *testing.T, c pb.AgentClient, host, path, dest string) error {
	t.Helper()
	stream, err := c.GetFile(testCtx(t), &pb.GetFileRequest{Host: host, Path: path})
	require.NoError(t, err)
	// KeepSetID: the tests compare the trees whole, setgid directory and
	// all (lnsttest's GetFile clears setuid and setgid).
	r := &filetree.Receiver{Dest: dest, KeepSetID: true}
	for {
		ch, err := stream.Recv()
		if err == io.EOF {
			return r.Finish()
		}
		if err == nil {
			err = r.Receive(ch)
		}
		if err != nil {
			r.Abort()
			return err
		}
	}
}

// testTree lists the tree at root: relative path -> type, mode, and
// content or target.
func testTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "symlink -> " + target
			return err
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v", fi.Mode())
		default:
			b, err := os.ReadFile(p)
			out[rel] = fmt.Sprintf("file %v %d bytes %x", fi.Mode(), len(b), b[:min(len(b), 16)])
			if len(b) > 0 {
				out[rel] += fmt.Sprintf(" last %x", b[len(b)-1])
			}
			return err
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// testMakeTree makes a tree with modes, a file of several chunks, an
// empty file, a setgid directory and symlinks (one dangling).
func testMakeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*filetree.ChunkSize+123)/16)
	for _, f := range []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"a.txt", 0o640, []byte("hello\n")},
		{"sub/big.bin", 0o755, big},
		{"sub/empty", 0o600, nil},
		{"sub/deeper/x", 0o444, []byte("x")},
	} {
		p := filepath.Join(root, f.path)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, f.data, 0o600))
		require.NoError(t, os.Chmod(p, f.mode))
	}
	require.NoError(t, os.Chmod(filepath.Join(root, "sub"), 0o750|fs.ModeSetgid))
	require.NoError(t, os.Chmod(filepath.Join(root, "sub/deeper"), 0o555))
	require.NoError(t, os.Symlink("sub/big.bin", filepath.Join(root, "link")))
	require.NoError(t, os.Symlink("/nonexistent/lnst", filepath.Join(root, "dangling")))
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "sub/deeper"), 0o755) })
	return root
}

func TestPutGetTreeRoundTrip(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	src := testMakeTree(t)
	dst := t.TempDir()

	r, err := testPut(t, c, "h1", "files", src, dst)
	require.NoError(t, err)
	put := filepath.Join(dst, "tree")
	assert.Equal(t, put, r.Path, "into the existing directory, under the base name")
	assert.Equal(t, int32(4), r.Files)
	assert.NotZero(t, r.Seq)
	want := testTree(t, src)
	assert.Equal(t, want, testTree(t, put))
	assert.Contains(t, want["sub"], "dir dgrwxr-x---", "the tree has a setgid directory")
	ents, err := os.ReadDir(filepath.Join(put, "sub"))
	require.NoError(t, err)
	for _, e := range ents {
		assert.NotContains(t, e.Name(), ".lnst-put-", "no temporary file left")
	}
	// The host sees it (lab hosts share the machine's filesystem).
	assert.Equal(t, "hello\n", testSh(t, c, "h1", "cat "+filepath.Join(put, "a.txt")))

	back := filepath.Join(t.TempDir(), "back")
	require.NoError(t, testGet(t, c, "h1", put, back))
	assert.Equal(t, want, testTree(t, back))
	// A single file, into an existing directory.
	require.NoError(t, testGet(t, c, "h1", filepath.Join(put, "sub/big.bin"), filepath.Join(back, "copy")))
	assert.Equal(t, want["sub/big.bin"], testTree(t, back)["copy"])

	// /proc/sys/net and /sys are read as the host sees them.
	_, err = c.WriteValue(testCtx(t), &pb.WriteValueRequest{Host: "h1", Group: "values", Kind: kindSysctl, Key: "net.ipv4.ip_default_ttl", Value: "33"})
	require.NoError(t, err)
	require.NoError(t, testGet(t, c, "h1", "/proc/sys/net/ipv4/ip_default_ttl", filepath.Join(back, "ttl")))
	b, err := os.ReadFile(filepath.Join(back, "ttl"))
	require.NoError(t, err)
	assert.Equal(t, "33\n", string(b))
	testRestoreCount(t, c, "values")

	assert.Equal(t, int32(2), testRestoreCount(t, c, "files"), "two entries: the new tree, made under a temporary name and renamed into place")
	_, err = os.Lstat(put)
	assert.ErrorIs(t, err, fs.ErrNotExist, "restore removes the tree")
	_, err = os.Stat(dst)
	assert.NoError(t, err, "restore keeps the directory it was put into")
}

func TestPutFileOverwriteRestoresBackup(t *testing.T) {
	srv, c := testServer(t)
	testHost(t, c, "h1")
	dir := t.TempDir()
	old := filepath.Join(dir, "conf")
	require.NoError(t, os.WriteFile(old, []byte("old\n"), 0o600))
	var before syscall.Stat_t
	require.NoError(t, syscall.Stat(old, &before))
	oldLink := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("conf", oldLink))

	src := filepath.Join(t.TempDir(), "conf")
	require.NoError(t, os.WriteFile(src, []byte("new\n"), 0o644))
	_, err := testPut(t, c, "h1", "files", src, old)
	require.NoError(t, err)
	_, err = testPut(t, c, "h1", "files", src, oldLink)
	require.NoError(t, err)
	for _, p := range []string{old, oldLink} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, "new\n", string(b))
	}
	fi, err := os.Lstat(oldLink)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the symlink is replaced by a file")

	assert.Equal(t, int32(2), testRestoreCount(t, c, "files"))
	b, err := os.ReadFile(old)
	require.NoError(t, err)
	assert.Equal(t, "old\n", string(b))
	var after syscall.Stat_t
	require.NoError(t, syscall.Stat(old, &after))
	assert.Equal(t, before.Ino, after.Ino, "the very file is back (a hard-link backup)")
	assert.Equal(t, uint32(0o600), after.Mode&0o7777)
	target, err := os.Readlink(oldLink)
	require.NoError(t, err)
	assert.Equal(t, "conf", target, "the symlink is back")
	require.NotEmpty(t, srv.files.tmpBackups)
	_, err = os.Stat(srv.files.tmpBackups)
	assert.ErrorIs(t, err, fs.ErrNotExist, "the emptied backup directory is removed")
}

func TestPutFileMakesParents(t *testing.T) {
	_, c := testServer(t)
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(src, []byte("f"), 0o644))
	dst := filepath.Join(dir, "a", "b", "f")
	r, err := testPut(t, c, "", "files", src, dst)
	require.NoError(t, err)
	assert.Equal(t, dst, r.Path)
	assert.Equal(t, int32(1), testRestoreCount(t, c, "files"), "one entry: the topmost parent made")
	_, err = os.Lstat(filepath.Join(dir, "a"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestPutFileBadArguments(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	dir := t.TempDir()
	file := &pb.FileChunk{Entry: &pb.FileEntry{Mode: 0o644}, Data: []byte("x")}
	for _, p := range []string{"", "tmp/x", dir + "/../x", dir + "/", "/proc/sys/kernel/x", "/sys/class/x"} {
		err := testPutChunks(t, c, &pb.PutFileRequest{Host: "h1", Group: "files", Path: p, Name: "x"}, file)
		testCode(t, err, codes.InvalidArgument, fmt.Sprintf("%q", p), `host "h1"`)
	}
	err := testPutChunks(t, c, &pb.PutFileRequest{Host: "h1", Group: "files", Path: dir, Name: "a/b"}, file)
	testCode(t, err, codes.InvalidArgument, "not a file name")
	err = testPutChunks(t, c, &pb.PutFileRequest{Host: "nosuch", Path: dir + "/x"}, file)
	testCode(t, err, codes.NotFound, "nosuch")

	dirEntry := &pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_DIR, Mode: 0o755}}
	for name, chunks := range map[string][]*pb.FileChunk{
		"not the root":      {{Entry: &pb.FileEntry{Rel: "x"}}},
		"not a clean":       {dirEntry, {Entry: &pb.FileEntry{Rel: "../x"}}},
		"before its":        {dirEntry, {Entry: &pb.FileEntry{Rel: "a/b"}}},
		"comes twice":       {dirEntry, {Entry: &pb.FileEntry{Rel: "a", Type: pb.FileEntry_DIR}}, {Entry: &pb.FileEntry{Rel: "a", Type: pb.FileEntry_DIR}}},
		"data without":      {dirEntry, {Data: []byte("x")}},
		"no entry received": nil,
	} {
		dst := filepath.Join(dir, "bad")
		err := testPutChunks(t, c, &pb.PutFileRequest{Host: "h1", Group: "files", Path: dst}, chunks...)
		testCode(t, err, codes.InvalidArgument, name, dst, `host "h1"`)
		testRestoreCount(t, c, "files")
		_, err = os.Lstat(dst)
		assert.ErrorIs(t, err, fs.ErrNotExist, "%s: nothing left", name)
	}

	// A file where a directory is, and the other way round.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	err = testPutChunks(t, c, &pb.PutFileRequest{Host: "h1", Group: "files", Path: filepath.Join(dir, "d")}, file)
	testCode(t, err, codes.InvalidArgument, "no name")
	err = testPutChunks(t, c, &pb.PutFileRequest{Host: "h1", Group: "files", Path: filepath.Join(dir, "f")}, dirEntry)
	testCode(t, err, codes.Aborted, "exists and is not a directory")

	_, err = c.GetFile(testCtx(t), &pb.GetFileRequest{Host: "h1", Path: "rel"})
	if err == nil {
		err = testGet(t, c, "h1", "rel", t.TempDir())
	}
	testCode(t, err, codes.InvalidArgument, `"rel"`)
	err = testGet(t, c, "h1", filepath.Join(dir, "nosuch"), filepath.Join(t.TempDir(), "x"))
	testCode(t, err, codes.NotFound, "nosuch", `host "h1"`)
}

func TestTempDirRemovedAtRestore(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	var dirs []string
	for _, host := range []string{"", "h1"} {
		r, err := c.TempDir(testCtx(t), &pb.TempDirRequest{Host: host, Group: "files"})
		require.NoError(t, err)
		assert.NotZero(t, r.Seq)
		assert.True(t, strings.HasPrefix(r.Path, os.TempDir()+"/"), "%s is under $TMPDIR", r.Path)
		fi, err := os.Stat(r.Path)
		require.NoError(t, err)
		assert.True(t, fi.IsDir())
		testSh(t, c, "h1", "mkdir "+r.Path+"/sub && echo x > "+r.Path+"/sub/f")
		dirs = append(dirs, r.Path)
	}
	assert.NotEqual(t, dirs[0], dirs[1])
	assert.Equal(t, int32(2), testRestoreCount(t, c, "files"))
	for _, d := range dirs {
		_, err := os.Lstat(d)
		assert.ErrorIs(t, err, fs.ErrNotExist, "%s removed with what it held", d)
	}
}

func TestFilesOfDestroyedHostRemoved(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	r, err := c.TempDir(testCtx(t), &pb.TempDirRequest{Host: "h1", Group: "files"})
	require.NoError(t, err)
	_, err = c.DestroyHost(testCtx(t), &pb.HostRef{Host: "h1"})
	require.NoError(t, err)
	testRestoreCount(t, c, "files")
	_, err = os.Lstat(r.Path)
	assert.ErrorIs(t, err, fs.ErrNotExist, "a lab host's files are on the machine's filesystem")
}

// TestPutFileRecoveredAfterCrash puts a file over another on the agent's
// own host with an on-disk journal, and "crashes" (the journal keeps the
// entry): the next agent puts the old file back from its backup.
func TestPutFileRecoveredAfterCrash(t *testing.T) {
	path := testJournalPath(t)
	srv, c := testServerOpts(t, Options{JournalPath: path})
	dir := t.TempDir()
	target := filepath.Join(dir, "conf")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o600))
	src := filepath.Join(t.TempDir(), "conf")
	require.NoError(t, os.WriteFile(src, []byte("new"), 0o644))
	_, err := testPut(t, c, "", "s/g", src, target)
	require.NoError(t, err)
	// The crash: the agent forgets its entries without undoing them.
	left := srv.journal.take("", 0, true)
	require.Len(t, left, 1)
	assert.NotEmpty(t, left[0].Backup)
	assert.True(t, strings.HasPrefix(left[0].Backup, filepath.Dir(path)+"/"), "backup %s next to the journal", left[0].Backup)
	require.NoError(t, srv.journal.close())

	srv2, err := NewServer(Options{JournalPath: path})
	require.NoError(t, err)
	defer srv2.Shutdown()
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b), "put back by the next agent")
}

func TestUndoPathJournalRecord(t *testing.T) {
	u := undo{Seq: 3, Group: "g", Op: opRemovePath, Path: "/tmp/x", Backup: "/var/lib/lnst/lnst-backups/1-x"}
	b, err := encodeRecord(journalRecord{Op: recordAdd, Entry: &u})
	require.NoError(t, err)
	r, _, reason := decodeRecord(append(journalHeader(), b...), int64(journalHeaderLen))
	require.Empty(t, reason)
	assert.Equal(t, u, *r.Entry)
	assert.Contains(t, u.String(), "put /tmp/x back from backup")
}

func TestFacts(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	_, err := c.CreateLink(testCtx(t), &pb.CreateLinkRequest{Host: "h1", Group: "files", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}})
	require.NoError(t, err)
	for _, host := range []string{"", "h1"} {
		f, err := c.Facts(testCtx(t), &pb.FactsRequest{Host: host})
		require.NoError(t, err)
		assert.NotEmpty(t, f.Kernel)
		assert.NotEmpty(t, f.Arch)
		assert.Equal(t, int32(runtime.NumCPU()), f.NumCpu)
		if _, err := os.Stat("/etc/os-release"); err == nil {
			assert.NotEmpty(t, f.Distribution)
			assert.NotEmpty(t, f.OsId)
		}
		for _, n := range f.Nics {
			assert.NotEqual(t, "lo", n.Name, "loopback is not a NIC")
		}
		if host == "h1" {
			require.Len(t, f.Nics, 2, "%v", f.Nics)
			for _, n := range f.Nics {
				assert.Equal(t, "veth", n.Driver)
				assert.Len(t, n.Hwaddr, 6)
			}
		}
	}
	_, err = c.Facts(testCtx(t), &pb.FactsRequest{Host: "nosuch"})
	testCode(t, err, codes.NotFound, "nosuch")
}

func TestReboot(t *testing.T) {
	_, lab := testServer(t)
	_, err := lab.Reboot(testCtx(t), &pb.RebootRequest{})
	testCode(t, err, codes.FailedPrecondition, "lab agent")

	srv, c := testServerOpts(t, Options{})
	rebooted := make(chan struct{})
	srv.files.reboot = func() error { close(rebooted); return nil }
	hello, err := c.Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err)
	assert.NotEmpty(t, hello.BootId)
	_, err = c.Reboot(testCtx(t), &pb.RebootRequest{Host: "nosuch"})
	testCode(t, err, codes.NotFound, "nosuch")
	start := time.Now()
	_, err = c.Reboot(testCtx(t), &pb.RebootRequest{})
	require.NoError(t, err)
	select {
	case <-rebooted:
		assert.GreaterOrEqual(t, time.Since(start), rebootDelay, "the reply goes out first")
	case <-time.After(10 * time.Second):
		t.Fatal("the reboot command did not run within 10s")
	}
}

// TestCopyBackup covers the backups made and put back by copying, for a
// backup directory on another filesystem than the file.
func TestCopyBackup(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(f, []byte("data"), 0o640))
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, os.Chtimes(f, mtime, mtime))
	l := filepath.Join(dir, "l")
	require.NoError(t, os.Symlink("f", l))

	for _, p := range []string{f, l} {
		b := p + ".bak"
		require.NoError(t, copyPath(p, b))
		want := testTree(t, dir)[filepath.Base(p)]
		assert.Equal(t, want, testTree(t, dir)[filepath.Base(b)])
		assert.Error(t, copyPath(p, b), "the backup must not exist")
		require.NoError(t, os.Remove(p))
		require.NoError(t, copyBack(b, p))
		assert.Equal(t, want, testTree(t, dir)[filepath.Base(p)])
		_, err := os.Lstat(b)
		assert.ErrorIs(t, err, fs.ErrNotExist, "copyBack removes the backup")
	}
	fi, err := os.Stat(f)
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(mtime), "times kept: %v", fi.ModTime())
	assert.Error(t, copyPath(dir, filepath.Join(t.TempDir(), "d")), "a directory is not backed up")
}
