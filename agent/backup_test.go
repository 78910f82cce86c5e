package agent

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testNobody is the uid and gid of the local user who attacks the agent's
// backups in these tests.
const testNobody = 65534

// testAttackerFile makes a file of the attacker (owned by nobody) in dir.
func testAttackerFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	require.NoError(t, os.Chown(p, testNobody, testNobody))
	return p
}

// testBackups returns the backups of the group's entries, newest last.
func testBackups(srv *Server, group string) []string {
	srv.journal.mu.Lock()
	defer srv.journal.mu.Unlock()
	var bs []string
	for _, u := range srv.journal.entries {
		if u.Group == group && u.Backup != "" {
			bs = append(bs, u.Backup)
		}
	}
	return bs
}

// testRestoreErrors restores group and returns its errors.
func testRestoreErrors(t *testing.T, c pb.AgentClient, group string) []string {
	t.Helper()
	r, err := c.Restore(testCtx(t), &pb.RestoreRequest{Group: group})
	require.NoError(t, err)
	return r.Errors
}

// TestBackupDirPrecreated is the attack on the predictable backup
// directory: a local user makes os.TempDir()/lnst-agent-<pid>-backups
// (open to them) before the agent's first backup and, after a put over a
// root-owned file, swaps the backup for their own file. The restore must
// not make the root-owned file theirs.
func TestBackupDirPrecreated(t *testing.T) {
	srv, c := testServer(t)
	predictable := filepath.Join(os.TempDir(), fmt.Sprintf("lnst-agent-%d-backups", os.Getpid()))
	if _, err := os.Lstat(predictable); err == nil {
		t.Fatalf("%s exists already", predictable)
	}
	require.NoError(t, os.Mkdir(predictable, 0o777))
	t.Cleanup(func() { os.RemoveAll(predictable) })
	require.NoError(t, os.Chmod(predictable, 0o777))
	require.NoError(t, os.Chown(predictable, testNobody, testNobody))

	target := filepath.Join(t.TempDir(), "sudoers")
	require.NoError(t, os.WriteFile(target, []byte("root only\n"), 0o440))
	src := filepath.Join(t.TempDir(), "sudoers")
	require.NoError(t, os.WriteFile(src, []byte("recipe's\n"), 0o440))
	_, err := testPut(t, c, "", "files", src, target)
	require.NoError(t, err)

	// The attacker swaps whatever backup sits in their directory.
	ents, err := os.ReadDir(predictable)
	require.NoError(t, err)
	for _, e := range ents {
		evil := testAttackerFile(t, t.TempDir(), "evil", "nobody ALL=(ALL) NOPASSWD: ALL\n")
		require.NoError(t, os.Rename(evil, filepath.Join(predictable, e.Name())))
	}
	assert.Empty(t, ents, "the agent keeps no backup in a directory someone else made")
	for _, b := range testBackups(srv, "files") {
		assert.False(t, strings.HasPrefix(b, predictable+"/"), "backup %s", b)
	}

	testRestoreErrors(t, c, "files")
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "root only\n", string(b), "the restore put the root-owned file back, not the attacker's")
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(target, &st))
	assert.Equal(t, uint32(0), st.Uid)
}

// TestBackupSwappedRefused swaps a backup, in the agent's own directory,
// for another file or for a symlink between the put and its undo: the
// undo refuses to put it back, naming the path, and renames nothing.
func TestBackupSwappedRefused(t *testing.T) {
	for _, swap := range []string{"file", "symlink", "hardlink"} {
		t.Run(swap, func(t *testing.T) {
			srv, c := testServer(t)
			dir := t.TempDir()
			target := filepath.Join(dir, "conf")
			require.NoError(t, os.WriteFile(target, []byte("old\n"), 0o600))
			src := filepath.Join(t.TempDir(), "conf")
			require.NoError(t, os.WriteFile(src, []byte("new\n"), 0o600))
			_, err := testPut(t, c, "", "files", src, target)
			require.NoError(t, err)
			bs := testBackups(srv, "files")
			require.Len(t, bs, 1)
			backup := bs[0]

			fi, err := os.Lstat(filepath.Dir(backup))
			require.NoError(t, err)
			assert.True(t, fi.IsDir())
			assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm(), "the backup directory is the agent's alone")

			attacker := t.TempDir()
			secret := filepath.Join(attacker, "shadow")
			require.NoError(t, os.WriteFile(secret, []byte("root:secret\n"), 0o600))
			var evil string
			switch swap {
			case "file":
				evil = testAttackerFile(t, attacker, "evil", "evil\n")
			case "symlink":
				evil = filepath.Join(attacker, "link")
				require.NoError(t, os.Symlink(secret, evil))
			case "hardlink":
				// Same owner (root), another inode.
				evil = filepath.Join(attacker, "hard")
				require.NoError(t, os.Link(secret, evil))
			}
			require.NoError(t, os.Rename(evil, backup))

			errs := testRestoreErrors(t, c, "files")
			require.Len(t, errs, 1, "the undo is refused")
			assert.Contains(t, errs[0], target)
			assert.Contains(t, errs[0], "not the file the agent saved")
			fi, err = os.Lstat(target)
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular(), "%s is not replaced by a symlink", target)
			b, err := os.ReadFile(target)
			require.NoError(t, err)
			assert.Equal(t, "new\n", string(b), "nothing was renamed over %s", target)
			_, err = os.Lstat(backup)
			assert.NoError(t, err, "the swapped backup is left where it is")
		})
	}
}

// TestBackupDirNextToJournalChecked: the backup directory next to an
// on-disk journal is used only when it is the agent's alone; a put that
// would back a file up in another is refused, the file left as it was.
func TestBackupDirNextToJournalChecked(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(t *testing.T, dir string)
		want string
	}{
		{"open to others", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Chmod(dir, 0o777))
		}, "has mode 0777"},
		{"group readable", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Chmod(dir, 0o750))
		}, "has mode 0750"},
		{"someone else's", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Chown(dir, testNobody, testNobody))
		}, "not owned by the agent's user"},
		{"a symlink", func(t *testing.T, dir string) {
			other := t.TempDir()
			require.NoError(t, os.Chmod(other, 0o700))
			require.NoError(t, os.Symlink(other, dir))
		}, "not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := testJournalPath(t)
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			backups := filepath.Join(filepath.Dir(path), "lnst-backups")
			c.make(t, backups)
			_, cl := testServerOpts(t, Options{JournalPath: path})
			target := filepath.Join(t.TempDir(), "conf")
			require.NoError(t, os.WriteFile(target, []byte("old"), 0o600))
			src := filepath.Join(t.TempDir(), "conf")
			require.NoError(t, os.WriteFile(src, []byte("new"), 0o644))
			_, err := testPut(t, cl, "", "s/g", src, target)
			require.Error(t, err, "a put that needs a backup in %s", backups)
			assert.ErrorContains(t, err, backups)
			assert.ErrorContains(t, err, c.want)
			b, err := os.ReadFile(target)
			require.NoError(t, err)
			assert.Equal(t, "old", string(b))
			assert.Empty(t, testRestoreErrors(t, cl, "s/g"))
		})
	}
}

// TestBackupIDJournaled: the backup's device, inode and owner go to the
// on-disk journal with it, and the next agent checks them.
func TestBackupIDJournaled(t *testing.T) {
	u := undo{Seq: 3, Group: "g", Op: opRemovePath, Path: "/tmp/x", Backup: "/var/lib/lnst/lnst-backups/1-x",
		BackupID: &backupID{Dev: 2049, Ino: 1234, UID: 1000}}
	b, err := encodeRecord(journalRecord{Op: recordAdd, Entry: &u})
	require.NoError(t, err)
	r, _, reason := decodeRecord(append(journalHeader(), b...), int64(journalHeaderLen))
	require.Empty(t, reason)
	assert.Equal(t, u, *r.Entry)

	// A crashed agent's entry, whose backup was swapped meanwhile.
	path := testJournalPath(t)
	srv, c := testServerOpts(t, Options{JournalPath: path})
	target := filepath.Join(t.TempDir(), "conf")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o600))
	src := filepath.Join(t.TempDir(), "conf")
	require.NoError(t, os.WriteFile(src, []byte("new"), 0o644))
	_, err = testPut(t, c, "", "s/g", src, target)
	require.NoError(t, err)
	left := srv.journal.take("", 0, true)
	require.Len(t, left, 1)
	require.NotNil(t, left[0].BackupID)
	require.NoError(t, srv.journal.close())
	evil := testAttackerFile(t, t.TempDir(), "evil", "evil")
	require.NoError(t, os.Rename(evil, left[0].Backup))

	srv2, err := NewServer(Options{JournalPath: path})
	require.NoError(t, err, "recovery logs a failed undo")
	defer srv2.Shutdown()
	b, err = os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b), "the swapped backup is not put back")
	b, err = os.ReadFile(left[0].Backup)
	require.NoError(t, err)
	assert.Equal(t, "evil", string(b), "the swapped backup is left where it is")
	err = srv2.undoPath(left[0])
	assert.ErrorContains(t, err, "refusing to put "+target+" back")
	assert.ErrorContains(t, err, "not the file the agent saved")
}

// TestBackupOldJournalEntry: an entry without backupID (but with what the
// change made) has no recorded identity of its backup; its backup is put
// back when its directory is the agent's alone, and refused when it is
// not. An entry with neither (journaled before both) is left alone.
func TestBackupOldJournalEntry(t *testing.T) {
	srv, _ := testServer(t)
	for _, open := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "lnst-backups")
		require.NoError(t, os.Mkdir(dir, 0o700))
		target := filepath.Join(t.TempDir(), "conf")
		require.NoError(t, os.WriteFile(target, []byte("new"), 0o600))
		backup := filepath.Join(dir, "1-conf")
		require.NoError(t, os.WriteFile(backup, []byte("old"), 0o600))
		if open {
			require.NoError(t, os.Chmod(dir, 0o777))
		}
		srv.files.backupMu.Lock()
		srv.files.tmpBackups = dir // the agent's own backup directory
		srv.files.backupMu.Unlock()
		fi, err := os.Lstat(target)
		require.NoError(t, err)
		err = srv.undoPath(undo{Op: opRemovePath, Path: target, Backup: backup, Made: madeIDOf(fi)})
		b, rerr := os.ReadFile(target)
		require.NoError(t, rerr)
		if open {
			assert.ErrorContains(t, err, "refusing to put "+target+" back")
			assert.Equal(t, "new", string(b))
		} else {
			assert.NoError(t, err)
			assert.Equal(t, "old", string(b))
		}
	}

	dir := filepath.Join(t.TempDir(), "lnst-backups")
	require.NoError(t, os.Mkdir(dir, 0o700))
	target := filepath.Join(t.TempDir(), "conf")
	require.NoError(t, os.WriteFile(target, []byte("new"), 0o600))
	backup := filepath.Join(dir, "1-conf")
	require.NoError(t, os.WriteFile(backup, []byte("old"), 0o600))
	srv.files.backupMu.Lock()
	srv.files.tmpBackups = dir
	srv.files.backupMu.Unlock()
	err := srv.undoPath(undo{Op: opRemovePath, Path: target, Backup: backup})
	assert.ErrorContains(t, err, "left alone")
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b), "an entry recording nothing the agent made changes nothing")
	_, err = os.Lstat(backup)
	assert.NoError(t, err, "its backup stays")
}
