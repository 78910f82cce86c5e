package lnsttest_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lifeTree makes a tree with modes, a file of several 64 KiB chunks and a
// symlink, and returns its root.
func lifeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello\n"), 0o640))
	big := bytes.Repeat([]byte("lnst-go\n"), 40000) // 320 kB
	require.NoError(t, os.WriteFile(filepath.Join(root, "sub", "run.sh"), big, 0o755))
	require.NoError(t, os.Chmod(filepath.Join(root, "a.txt"), 0o640))
	require.NoError(t, os.Chmod(filepath.Join(root, "sub", "run.sh"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(root, "sub"), 0o750))
	require.NoError(t, os.Symlink("sub/run.sh", filepath.Join(root, "link")))
	return root
}

// lifeListing lists a local tree as `find . | sort` and `stat` would:
// path, octal mode, type, and content or link target.
func lifeListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o", rel, fi.Mode().Perm())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d bytes", len(b))
			if len(b) > 0 {
				line += fmt.Sprintf(" %x", b[len(b)-1])
			}
		}
		out = append(out, line)
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

func TestHostFilesE2E(t *testing.T) {
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	src := lifeTree(t)
	var dir string
	t.Run("put-get", func(t *testing.T) {
		dir = h.TempDir(t)
		require.True(t, strings.HasPrefix(dir, os.TempDir()+"/"), "%s under $TMPDIR (lab hosts share this machine's filesystem)", dir)
		h.PutFile(t, src, dir)
		put := filepath.Join(dir, "tree")

		find := h.Output(t, "cd "+put+" && find . | sort")
		assert.Equal(t, ".\n./a.txt\n./link\n./sub\n./sub/run.sh\n", find)
		stat := h.Output(t, "cd "+put+" && stat -c '%n %a %F' a.txt sub sub/run.sh link && readlink link")
		assert.Equal(t, "a.txt 640 regular file\nsub 750 directory\nsub/run.sh 755 regular file\nlink 777 symbolic link\nsub/run.sh\n", stat)
		sum := h.Run(t, "cmp "+filepath.Join(src, "sub/run.sh")+" "+filepath.Join(put, "sub/run.sh")+" && echo same")
		assert.Equal(t, "same\n", sum.Result().Stdout)

		back := t.TempDir()
		h.GetFile(t, put, back)
		assert.Equal(t, lifeListing(t, src), lifeListing(t, filepath.Join(back, "tree")), "GetFile of a tree into a directory")
		h.GetFile(t, filepath.Join(put, "a.txt"), filepath.Join(back, "copy.txt"))
		b, err := os.ReadFile(filepath.Join(back, "copy.txt"))
		require.NoError(t, err)
		assert.Equal(t, "hello\n", string(b))

		// A setuid program of the host arrives without its setuid bit:
		// the controller does not make the agent's files its programs.
		suid := filepath.Join(dir, "suid")
		h.Run(t, "printf '#!/bin/sh\\n' > "+suid+" && chmod 4755 "+suid)
		h.GetFile(t, suid, back)
		fi, err := os.Stat(filepath.Join(back, "suid"))
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o755), fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid), "mode %v", fi.Mode())

		// Overwrite a file: it is put back when the subtest ends.
		other := filepath.Join(t.TempDir(), "a.txt")
		require.NoError(t, os.WriteFile(other, []byte("changed\n"), 0o600))
		h.PutFile(t, other, filepath.Join(put, "a.txt"))
		assert.Equal(t, "changed\n", h.Output(t, "cat "+filepath.Join(put, "a.txt")))
	})
	require.NotEmpty(t, dir)
	h.Run(t, "test ! -e "+dir, lnsttest.Desc("the temporary directory is gone"))
	_, err := os.Lstat(dir)
	assert.ErrorIs(t, err, fs.ErrNotExist, "%s removed when the subtest ended", dir)
}

func TestHostFactsE2E(t *testing.T) {
	h := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")))).Host("h1")
	assert.Equal(t, runtime.NumCPU(), h.NumCPU(t))
	f := h.Facts(t)
	uname, err := os.ReadFile("/proc/sys/kernel/osrelease")
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(uname)), f.Kernel)
	assert.NotEmpty(t, f.Arch)
	if _, err := os.Stat("/etc/os-release"); err == nil {
		assert.NotEmpty(t, f.Distribution)
	}
	var names []string
	for _, n := range f.NICs {
		names = append(names, n.Name)
		if n.Name == "eth0" {
			assert.Equal(t, "veth", n.Driver)
			assert.Len(t, n.HWAddr, 6)
		}
	}
	assert.Contains(t, names, "eth0")
	assert.NotContains(t, names, "lo")
}

func TestHostUpE2E(t *testing.T) {
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	assert.True(t, h.IsUp())
	start := time.Now()
	h.WaitUp(t, 10*time.Second)
	assert.Less(t, time.Since(start), 3*time.Second, "an agent that is up answers at once")

	var sub *testing.T
	t.Run("reboot", func(t *testing.T) {
		sub = t
		h.Reboot(t)
		t.Error("Reboot returned on a lab host")
	})
	assert.True(t, sub.Skipped(), "Reboot skips on the lab")
}
