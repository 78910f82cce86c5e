package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testMade is the identity of what is at path.
func testMade(t testing.TB, path string) *madeID {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return madeIDOf(fi)
}

// testReplayServer is a server with only what replaying remove-path
// entries needs: its journal's path (beside it the backup directory) and
// a log.
func testReplayServer(journal string, log hclog.Logger) *Server {
	s := &Server{log: log, hosts: map[string]*host{}}
	s.journal.file = &journalFile{path: journal, pending: map[uint64]recSpan{}}
	return s
}

// TestReplayRemovesOnlyWhatItMade replays remove-path entries a previous
// agent left, in a tree this test made: only what the entries record as
// made by the agent is removed or replaced; "/", relative and unclean
// paths, backups outside the backup directory, paths whose content is not
// what the agent made, and entries that record nothing are refused, each
// with an error naming the path.
func TestReplayRemovesOnlyWhatItMade(t *testing.T) {
	root := t.TempDir()
	p := func(s string) string { return filepath.Join(root, s) }
	for _, d := range []string{"state/lnst-backups", "made/dir/sub", "keep/dir"} {
		require.NoError(t, os.MkdirAll(p(d), 0o700))
	}
	for _, f := range []string{"made/dir/sub/x", "made/file", "keep/file", "keep/dir/y", "keep/reused", "state/lnst-backups/00-file", "state/lnst-backups/01-reused"} {
		require.NoError(t, os.WriteFile(p(f), []byte(f), 0o600))
	}
	madeDir, madeFile := testMade(t, p("made/dir")), testMade(t, p("made/file"))
	path := p("state/journal")
	jf, _ := testOpenJournal(t, path, false)
	for _, u := range []undo{
		{Seq: 1, Op: opRemovePath, Path: "/", Made: madeDir},
		{Seq: 2, Op: opRemovePath, Path: "keep/dir", Made: madeDir},
		{Seq: 3, Op: opRemovePath, Path: root + "/made/../keep/dir", Made: madeDir},
		{Seq: 4, Op: opRemovePath, Path: p("keep/dir")},                // nothing recorded
		{Seq: 5, Op: opRemovePath, Path: p("keep/dir"), Made: madeDir}, // what it made is elsewhere
		{Seq: 6, Op: opRemovePath, Path: p("made/file"), Backup: p("keep/file"), Made: madeFile},
		{Seq: 7, Op: opRemovePath, Path: p("keep/reused"), Backup: p("state/lnst-backups/01-reused"), Made: madeFile},
		{Seq: 8, Op: opRemovePath, Path: p("made/dir"), Made: madeDir},
		{Seq: 9, Op: opRemovePath, Path: p("made/file"), Backup: p("state/lnst-backups/00-file"), Made: madeFile},
	} {
		u.Group = "g"
		require.NoError(t, jf.add(u))
	}
	require.NoError(t, jf.close())

	var log testLog
	srv, err := NewServer(Options{JournalPath: path, Logger: log.logger()})
	require.NoError(t, err)
	defer srv.Shutdown()
	out := log.String()
	// The log quotes the errors: the fragments between the quotes.
	for _, want := range [][]string{
		{"seq=1 ", `refused: path \"/\" is never removed`},
		{"seq=2 ", "refused: path", "keep/dir", "is not an absolute, clean path"},
		{"seq=3 ", "refused: path", root + "/made/../keep/dir", "is not an absolute, clean path"},
		{"seq=4 ", p("keep/dir") + " is left alone: the journal does not record what the agent made there"},
		{"seq=5 ", p("keep/dir") + " is left alone: it is not what the agent made there"},
		{"seq=6 ", "refused: backup", p("keep/file"), "is not a file of the agent's backup directory " + p("state/lnst-backups")},
		{"seq=7 ", p("keep/reused") + " is left alone: it is not what the agent made there"},
	} {
		assert.NotEmpty(t, testLogLine(out, append([]string{"[ERROR]", "undo failed"}, want...)...), "log has %q:\n%s", want, out)
	}
	for _, f := range []string{"keep/file", "keep/dir/y", "keep/reused", "state/lnst-backups/01-reused"} {
		b, err := os.ReadFile(p(f))
		require.NoError(t, err, "%s must stay", f)
		assert.Equal(t, f, string(b))
	}
	assert.NoDirExists(t, p("made/dir"), "the agent's directory is removed")
	b, err := os.ReadFile(p("made/file"))
	require.NoError(t, err)
	assert.Equal(t, "state/lnst-backups/00-file", string(b), "the backup is back over the agent's file")
	assert.DirExists(t, p("state/lnst-backups"), "01-reused is still in it")
}

// TestJournalCompactsWhilePending: with one entry pending for good (a
// pool session's TempDir), entries added and done after it do not grow
// the file for ever: it is rewritten with the live entries, which a new
// agent still finds, the last add record of each.
func TestJournalCompactsWhilePending(t *testing.T) {
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	jf.minCompact = 1
	j := journal{file: jf}
	long, err := j.reserve(undo{Group: "session", Op: opRemovePath, Path: "/tmp/lnst-tmp-1"})
	require.NoError(t, err)
	long.Made = &madeID{Dev: 1, Ino: 2}
	require.NoError(t, j.amend(long))
	j.commit(long)
	one := testFileSize(t, path)
	for i := range 200 {
		seq, err := j.add(undo{Group: "g", Op: opWriteValue, ValueKind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "0"})
		require.NoError(t, err)
		require.NoError(t, j.done(seq), "entry %d", i)
		require.LessOrEqual(t, testFileSize(t, path), 4*one, "after %d entries done", i+1)
	}
	require.NoError(t, j.close())
	_, o := testOpenJournal(t, path, false)
	require.Len(t, o.left, 1)
	assert.Equal(t, long, o.left[0], "the long-lived entry, as amended")
	assert.NoFileExists(t, path+".compact")
}

// TestJournalFileChecked: the journal is refused in a directory another
// user may write, reached by a symlink, or owned by another user, and
// when the journal itself is a symlink or has another link; each error
// names what is wrong.
func TestJournalFileChecked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(dir string) string
		want  string
	}{
		{"group-writable directory", func(dir string) string {
			require.NoError(t, os.Chmod(dir, 0o770))
			return filepath.Join(dir, "journal")
		}, "is writable by group or others (mode -rwxrwx---)"},
		{"world-writable directory", func(dir string) string {
			require.NoError(t, os.Chmod(dir, 0o1777))
			return filepath.Join(dir, "journal")
		}, "is writable by group or others"},
		{"directory of another user", func(dir string) string {
			require.NoError(t, os.Chown(dir, 65534, 65534))
			return filepath.Join(dir, "journal")
		}, "is not owned by the agent's user"},
		{"symlinked directory", func(dir string) string {
			real := filepath.Join(dir, "real")
			require.NoError(t, os.Mkdir(real, 0o700))
			require.NoError(t, os.Symlink(real, filepath.Join(dir, "link")))
			return filepath.Join(dir, "link", "journal")
		}, "/link is a symlink"},
		{"symlinked journal", func(dir string) string {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "elsewhere"), nil, 0o600))
			require.NoError(t, os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "journal")))
			return filepath.Join(dir, "journal")
		}, "journal: it is a symlink"},
		{"hard-linked journal", func(dir string) string {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "elsewhere"), nil, 0o600))
			require.NoError(t, os.Link(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "journal")))
			return filepath.Join(dir, "journal")
		}, "has 2 hard links"},
		{"journal of another user", func(dir string) string {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "journal"), nil, 0o600))
			require.NoError(t, os.Chown(filepath.Join(dir, "journal"), 65534, 65534))
			return filepath.Join(dir, "journal")
		}, "is not owned by the agent's user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			dir := filepath.Join(t.TempDir(), "state")
			require.NoError(t, os.Mkdir(dir, 0o700))
			path := tc.setup(dir)
			_, _, err := openJournalFile(path, false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "journal "+filepath.Dir(dir))
		})
	}
	// The agent's own directory, 0755 as systemd's StateDirectory=, is fine.
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o755))
	jf, _, err := openJournalFile(filepath.Join(dir, "journal"), false)
	require.NoError(t, err)
	jf.close()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(dir, "journal"), &st))
	assert.Equal(t, uint32(0o600), st.Mode&0o777)
}
