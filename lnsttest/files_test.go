package lnsttest

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// hostileAgent is an agent that answers GetFile with the chunks it is
// given, whatever was asked: a test machine taken over by an attacker.
type hostileAgent struct {
	pb.UnimplementedAgentServer
	chunks []*pb.FileChunk
}

func (a *hostileAgent) GetFile(_ *pb.GetFileRequest, stream grpc.ServerStreamingServer[pb.FileChunk]) error {
	for _, c := range a.chunks {
		if err := stream.Send(c); err != nil {
			return err
		}
	}
	return nil
}

// testHostileHost is a Host whose agent is a hostileAgent sending chunks,
// reached over gRPC on a unix socket.
func testHostileHost(t *testing.T, chunks ...*pb.FileChunk) *Host {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	g := grpc.NewServer()
	pb.RegisterAgentServer(g, &hostileAgent{chunks: chunks})
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &Host{client: pb.NewAgentClient(conn), name: "h1", id: "h1"}
}

// testGetFile runs h.getFile in a goroutine and returns its error; a
// getFile still running after a generous bound fails the test (it hangs).
func testGetFile(t *testing.T, h *Host, dest string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.getFile("/etc/lnst.conf", dest) }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("GetFile into %s still runs after 30s: it hangs", dest)
		return nil
	}
}

// testSourceEntry is a file entry naming p of this machine, with its
// device and inode, as its data.
func testSourceEntry(t *testing.T, p string) *pb.FileEntry {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(p, &st))
	return &pb.FileEntry{Type: pb.FileEntry_FILE, Mode: 0o644, Source: p, SourceDev: uint64(st.Dev), SourceIno: st.Ino}
}

// TestGetFileHostileSetuid: a setuid file from an agent arrives without
// its setuid bit.
func TestGetFileHostileSetuid(t *testing.T) {
	h := testHostileHost(t, &pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_FILE, Mode: 0o4755}, Data: []byte("#!/bin/sh\nexec /bin/sh -p\n")})
	dest := filepath.Join(t.TempDir(), "tool")
	require.NoError(t, testGetFile(t, h, dest))
	fi, err := os.Stat(dest)
	require.NoError(t, err)
	assert.Zero(t, fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid), "mode %v", fi.Mode())
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())
}

// TestGetFileHostileSource: an entry naming a file of the controller's
// machine (a root-only secret, /etc/shadow) is refused; nothing is copied.
func TestGetFileHostileSource(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("root:$6$secret"), 0o600))
	sources := []string{secret}
	if _, err := os.Lstat("/etc/shadow"); err == nil {
		sources = append(sources, "/etc/shadow")
	}
	for _, src := range sources {
		h := testHostileHost(t, &pb.FileChunk{Entry: testSourceEntry(t, src)})
		dir := t.TempDir()
		dest := filepath.Join(dir, "got")
		err := testGetFile(t, h, dest)
		assert.ErrorContains(t, err, src)
		_, err = os.Lstat(dest)
		assert.ErrorIs(t, err, fs.ErrNotExist, "nothing of %s copied", src)
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, ents, "no temporary file left")
	}
}

// TestGetFileHostileFIFO: a source naming a FIFO of the controller's
// machine is an error, not a hang.
func TestGetFileHostileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	t.Cleanup(func() {
		// A receiver stuck opening the FIFO for reading is let go.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	h := testHostileHost(t, &pb.FileChunk{Entry: testSourceEntry(t, fifo)})
	dest := filepath.Join(t.TempDir(), "got")
	assert.ErrorContains(t, testGetFile(t, h, dest), fifo)
	_, err := os.Lstat(dest)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestGetFileHostileTooBig: a stream with more data than GetFile takes
// fails naming the limit, and leaves nothing of the tree.
func TestGetFileHostileTooBig(t *testing.T) {
	defer func(old int64) { getFileMaxBytes = old }(getFileMaxBytes)
	getFileMaxBytes = 64 << 10
	data := make([]byte, 48<<10)
	h := testHostileHost(t,
		&pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_DIR, Mode: 0o755}},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "a", Type: pb.FileEntry_FILE, Mode: 0o644}, Data: data},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "b", Type: pb.FileEntry_FILE, Mode: 0o644}, Data: data},
	)
	dir := t.TempDir()
	err := testGetFile(t, h, filepath.Join(dir, "got"))
	assert.ErrorContains(t, err, "limit of 65536 bytes")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing left")
}
