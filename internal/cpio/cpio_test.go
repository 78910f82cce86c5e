package cpio

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry read back by readCpio.
type cpioEntry struct {
	name  string
	mode  uint32
	data  []byte
	nlink uint32
	rmaj  uint32
	rmin  uint32
}

// readCpio parses a newc archive up to TRAILER!!!, checking alignment.
func readCpio(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	for {
		if off%4 != 0 {
			t.Fatalf("header at offset %d is not 4-byte aligned", off)
		}
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic %q at offset %d", b[off:off+6], off)
		}
		mode, nlink, size, rmaj, rmin, namesize := field(1), field(4), field(6), field(9), field(10), field(11)
		nameStart := off + 110
		name := b[nameStart : nameStart+int(namesize)]
		if name[len(name)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := align4(nameStart + int(namesize))
		for _, c := range b[nameStart+int(namesize) : dataStart] {
			if c != 0 {
				t.Fatalf("non-zero name padding after %q", name)
			}
		}
		e := cpioEntry{name: string(name[:len(name)-1]), mode: mode, nlink: nlink, rmaj: rmaj, rmin: rmin,
			data: b[dataStart : dataStart+int(size)]}
		off = align4(dataStart + int(size))
		if e.name == "TRAILER!!!" {
			if len(b)%512 != 0 {
				t.Errorf("archive length %d is not padded to 512", len(b))
			}
			return out
		}
		out = append(out, e)
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

func TestWriteRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	srcData := bytes.Repeat([]byte("0123456789"), 1001) // 10010 bytes: needs padding
	if err := os.WriteFile(src, srcData, 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := Write(&buf, []File{
		{Path: "/lnst/run", Mode: 0o755, Data: []byte("#!/bin/sh\necho hi\n")},
		{Path: "/lnst/agent", Mode: 0o755, Src: src},
		{Path: "etc", Mode: os.ModeDir | 0o700},
		{Path: "etc/x/link", Mode: os.ModeSymlink, Data: []byte("../y")},
		{Path: "empty"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readCpio(t, buf.Bytes())
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"lnst", 0o040755, ""},
		{"lnst/run", 0o100755, "#!/bin/sh\necho hi\n"},
		{"lnst/agent", 0o100755, string(srcData)},
		{"etc", 0o040700, ""},
		{"etc/x", 0o040755, ""},
		{"etc/x/link", 0o120777, "../y"},
		{"empty", 0o100644, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %v, want %d", len(got), names(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.name != w.name || g.mode != w.mode || string(g.data) != w.data {
			t.Errorf("entry %d: got %s %o (%d bytes), want %s %o (%d bytes)",
				i, g.name, g.mode, len(g.data), w.name, w.mode, len(w.data))
		}
	}
}

func names(es []cpioEntry) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.name)
	}
	return s
}

func TestWriteDevice(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []File{{Path: "dev/console", Mode: os.ModeDevice | os.ModeCharDevice | 0o600, DevMajor: 5, DevMinor: 1}}); err != nil {
		t.Fatal(err)
	}
	got := readCpio(t, buf.Bytes())
	if len(got) != 2 || got[1].name != "dev/console" || got[1].mode != 0o020600 || got[1].rmaj != 5 || got[1].rmin != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestWriteErrors(t *testing.T) {
	for _, f := range []File{
		{Path: "/"},
		{Path: "x", Src: "/nonexistent/file"},
		{Path: "p", Mode: os.ModeNamedPipe},
	} {
		if err := Write(io.Discard, []File{f}); err == nil {
			t.Errorf("Write(%+v) succeeded, want an error", f)
		}
	}
}

// TestWriteCpioTool checks the archive against GNU cpio's listing.
func TestWriteCpioTool(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("requires cpio(1)")
	}
	var buf bytes.Buffer
	if err := Write(&buf, []File{
		{Path: "a/b/file", Mode: 0o640, Data: []byte("abc")},
		{Path: "a/l", Mode: os.ModeSymlink, Data: []byte("b/file")},
	}); err != nil {
		t.Fatal(err)
	}
	// Two archives back to back, as the kernel sees a base plus a per-run one.
	arch := append(bytes.Clone(buf.Bytes()), buf.Bytes()...)
	cmd := exec.Command("cpio", "-tv", "--quiet")
	cmd.Stdin = bytes.NewReader(arch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -tv: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		got = append(got, f[0]+" "+strings.Join(f[8:], " "))
	}
	want := []string{"drwxr-xr-x a", "drwxr-xr-x a/b", "-rw-r----- a/b/file", "lrwxrwxrwx a/l -> b/file"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cpio -tv lists\n%s\nwant %q", out, want)
	}
}
