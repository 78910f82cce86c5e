package lnsttest

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/filetree"
)

// Files on hosts: PutFile and GetFile stream a file or a whole tree over
// one RPC each (internal/filetree). Hosts of the local lab share this
// machine's filesystem (only their /sys is their own).

// PutFile copies the file, symlink or directory tree local to remote on
// the host: modes are kept, symlinks are copied as symlinks, each file is
// written to a temporary name and renamed into place. remote must be an
// absolute, clean path; when it is an existing directory, local goes into
// it under its base name (as cp does). Existing directories are merged
// into; an existing file or symlink is replaced. When the test ends,
// everything the put created is removed and every file it replaced is put
// back (the agent keeps a backup until then).
func (h *Host) PutFile(t testing.TB, local, remote string) {
	t.Helper()
	if !path.IsAbs(remote) || path.Clean(remote) != remote {
		t.Fatalf("%s: put %s to %s: the host path must be absolute and clean", h.name, local, remote)
	}
	abs, err := filepath.Abs(local)
	if err == nil {
		_, err = os.Lstat(abs)
	}
	if err != nil {
		t.Fatalf("%s: put %s to %s: %v", h.name, local, remote, err)
	}
	st := h.s.state(t)
	if err := h.s.noteFile(h, remote, filepath.Base(abs), false); err != nil {
		t.Fatalf("%s: put %s to %s: %v", h.name, local, remote, err)
	}
	st.use(h.client) // a put cut short is still restored with the test
	r, err := h.putFile(st.group, abs, remote)
	if err != nil {
		t.Fatalf("%s: put %s to %s: %v", h.name, local, remote, err)
	}
	st.logger().Debug("put file", "host", h.name, "local", local, "remote", r.Path, "files", r.Files, "bytes", r.Bytes)
	if r.Seq != 0 {
		st.undoAt(t, h.client, "files put at "+r.Path+" on "+h.name, r.Seq)
	}
}

func (h *Host) putFile(group, local, remote string) (*pb.PutFileReply, error) {
	return h.put(group, local, remote, h.sharesFS())
}

// put puts local at remote on the host; shared sends big files by path
// (filetree.SendShared) rather than as data.
func (h *Host) put(group, local, remote string, shared bool) (*pb.PutFileReply, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // on a local error, the agent sees the stream end and drops the file cut short
	stream, err := h.client.PutFile(ctx)
	if err != nil {
		return nil, err
	}
	send := func(req *pb.PutFileRequest) error { return stream.Send(req) }
	err = send(&pb.PutFileRequest{Host: h.id, Group: group, Path: remote, Name: filepath.Base(local)})
	if err == nil {
		chunk := func(c *pb.FileChunk) error { return send(&pb.PutFileRequest{Chunk: c}) }
		if shared {
			err = filetree.SendShared(local, chunk)
		} else {
			err = filetree.Send(local, nil, chunk)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// io.EOF: the agent ended the stream; its error comes with the reply.
	return stream.CloseAndRecv()
}

// sharesFS reports whether h is a host of the local namespace lab, whose
// agent shares this process's filesystem: a put there sends big files by
// path and the agent copies them in the kernel, as cp does.
func (h *Host) sharesFS() bool {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.lab != nil && h.client == h.s.lab.Client()
}

// GetFile copies the file, symlink or tree remote of the host to local:
// modes are kept, but for setuid and setgid, and symlinks are copied as
// symlinks. When local is an existing directory, remote goes into it
// under its base name.
//
// The controller does not trust the stream with its own machine: the
// setuid and setgid bits it carries are cleared, an entry that names a
// file of this machine as its data is refused, and it may bring at most
// 1 GiB of data (filetree.DefaultMaxBytes); past that the test fails
// naming the limit, and nothing of a new tree is left at local.
func (h *Host) GetFile(t testing.TB, remote, local string) {
	t.Helper()
	dest := local
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		dest = filepath.Join(local, path.Base(remote))
	}
	if err := h.getFile(remote, dest); err != nil {
		t.Fatalf("%s: get %s to %s: %v", h.name, remote, dest, err)
	}
}

// getFileMaxBytes is the most data a GetFile takes; tests lower it.
var getFileMaxBytes int64 = filetree.DefaultMaxBytes

func (h *Host) getFile(remote, dest string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := h.client.GetFile(ctx, &pb.GetFileRequest{Host: h.id, Path: remote})
	if err != nil {
		return err
	}
	// The zero options: no sources, setuid and setgid cleared.
	r := &filetree.Receiver{Dest: dest, MaxBytes: getFileMaxBytes}
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			return r.Finish()
		}
		if err == nil {
			err = r.Receive(c)
		}
		if err != nil {
			r.Abort()
			return err
		}
	}
}
