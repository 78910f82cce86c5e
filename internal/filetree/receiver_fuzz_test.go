package filetree

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/protobuf/proto"
)

// fuzzSecret is the content of a file beside the destination that no
// stream may have copied.
const fuzzSecret = "FUZZ-SECRET-CONTENT"

// fuzzLimit is the fuzzed Receiver's MaxBytes.
const fuzzLimit = 4096

// fuzzStream encodes chunks as the fuzz input: each a 2-byte length and
// its protobuf.
func fuzzStream(chunks ...*pb.FileChunk) []byte {
	var b []byte
	for _, c := range chunks {
		m, _ := proto.Marshal(c)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// FuzzReceiver feeds a Receiver with the zero options (the controller's,
// receiving GetFile) arbitrary streams: whatever it does, nothing is
// written outside the destination, nothing is left under a temporary
// name, no file or directory has setuid or setgid, the files hold no more
// than the limit, and no file of the receiver's machine is copied (a
// source named "SECRET" is made to name the secret file, with its true
// device and inode). Each run writes files: fuzz it with a short
// -fuzzminimizetime (3s), or minimizing an input outlasts -fuzztime.
func FuzzReceiver(f *testing.F) {
	dir := &pb.FileEntry{Type: pb.FileEntry_DIR, Mode: 0o6755}
	f.Add(fuzzStream(&pb.FileChunk{Entry: &pb.FileEntry{Type: pb.FileEntry_FILE, Mode: 0o4755}, Data: []byte("x")}))
	f.Add(fuzzStream(&pb.FileChunk{Entry: dir},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "a", Type: pb.FileEntry_FILE, Mode: 0o6777, Source: "SECRET"}},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "l", Type: pb.FileEntry_SYMLINK, Target: ".."}},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "l/x", Type: pb.FileEntry_FILE}, Data: []byte("x")},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "../x", Type: pb.FileEntry_FILE}, Data: []byte("x")}))
	f.Add(fuzzStream(&pb.FileChunk{Entry: dir},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "d", Type: pb.FileEntry_DIR, Mode: 0o2700}},
		&pb.FileChunk{Entry: &pb.FileEntry{Rel: "d/f", Type: pb.FileEntry_FILE, Mode: 0o644}, Data: make([]byte, 3000)},
		&pb.FileChunk{Data: make([]byte, 3000)}))
	f.Fuzz(func(t *testing.T, in []byte) {
		root := t.TempDir()
		secret := filepath.Join(root, "secret")
		if err := os.WriteFile(secret, []byte(fuzzSecret), 0o600); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(secret, &st); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, "dst")
		r := &Receiver{Dest: dst, MaxBytes: fuzzLimit}
		failed := false
		for len(in) >= 2 && !failed {
			n := int(binary.LittleEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			c := &pb.FileChunk{}
			if proto.Unmarshal(in[:n], c) != nil {
				in = in[n:]
				continue
			}
			in = in[n:]
			if c.Entry != nil && c.Entry.Source == "SECRET" {
				c.Entry.Source, c.Entry.SourceDev, c.Entry.SourceIno = secret, uint64(st.Dev), st.Ino
			}
			failed = r.Receive(c) != nil
		}
		if failed || r.Finish() != nil {
			r.Abort()
		}

		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "secret" && e.Name() != "dst" {
				t.Errorf("%s is left beside the destination", e.Name())
			}
		}
		var total int64
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".lnst-put-") {
				t.Errorf("%s: a temporary name is left", p)
			}
			if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Errorf("%s has mode %v", p, fi.Mode())
			}
			if fi.Mode().IsRegular() {
				total += fi.Size()
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(fuzzSecret)) {
					t.Errorf("%s holds the secret", p)
				}
			}
			return nil
		})
		if total > fuzzLimit {
			t.Errorf("the files hold %d bytes, past the limit of %d", total, fuzzLimit)
		}
	})
}
