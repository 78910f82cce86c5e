package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// What the undo of a put or TempDir trusts.
//
// A remove-path entry names a path, and its replay removes what is there
// (a whole tree, for a directory) or renames a backup over it, as root.
// The journal is the agent's own file (see checkJournalDir), but what is
// at a path changes after the entry was written: a crash and a reboot
// later, /tmp/lnst-tmp-… may be someone else's. So an entry records
// what the agent made at its path (device and inode, Made, written to the
// journal once the change is made), and the undo removes or replaces only
// that: anything else at the path is left alone, with an error naming
// it. Paths must be absolute and clean, not "/" and not under /proc or
// /sys; a backup must be a file of the agent's backup directory.
//
// A crash between journaling an entry and recording what it made leaves
// an entry without Made: its path is left alone (and reported), never
// removed on trust. The check and the removal are two steps on the same
// directory handle (os.Root), so a parent swapped for a symlink in
// between does not send the removal elsewhere; the leaf swapped in
// between (by someone who may write the parent) is the window left.

// madeID is the identity of what a change made at a path.
type madeID struct {
	Dev, Ino uint64
}

func (m *madeID) String() string {
	if m == nil {
		return "nothing recorded"
	}
	return fmt.Sprintf("device %d inode %d", m.Dev, m.Ino)
}

// madeIDOf is the identity of fi, nil when fi has none.
func madeIDOf(fi fs.FileInfo) *madeID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return &madeID{Dev: st.Dev, Ino: st.Ino}
}

// checkUndoPath checks the paths of a remove-path entry before anything
// is done with them.
func (s *Server) checkUndoPath(u undo) error {
	if err := checkPutPath(u.Path); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if u.Path == "/" {
		return errors.New(`refused: path "/" is never removed`)
	}
	if u.Backup == "" {
		return nil
	}
	if err := checkHostPath(u.Backup); err != nil {
		return fmt.Errorf("refused: backup: %w", err)
	}
	if dir := s.backupDirName(); dir == "" || filepath.Dir(u.Backup) != dir || strings.HasPrefix(filepath.Base(u.Backup), ".") {
		return fmt.Errorf("refused: backup %q is not a file of the agent's backup directory %s", u.Backup, dir)
	}
	return nil
}

// madeAt reports what is at path when it is what the agent made (made),
// from the directory handle parent: errNothingToUndo when nothing is
// there, an error naming path when something else is.
func madeAt(parent *os.Root, path string, made *madeID) (fs.FileInfo, error) {
	fi, err := parent.Lstat(filepath.Base(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nothingToUndo("%s is gone", path)
	}
	if err != nil {
		return nil, err
	}
	if made == nil {
		return nil, fmt.Errorf("%s is left alone: the journal does not record what the agent made there (a crash right after the change?)", path)
	}
	if got := madeIDOf(fi); got == nil || *got != *made {
		return nil, fmt.Errorf("%s is left alone: it is not what the agent made there (%v; it is %v)", path, made, got)
	}
	return fi, nil
}

// openParent opens the directory path is in; a parent that is gone is
// nothing to undo.
func openParent(path string) (*os.Root, error) {
	r, err := os.OpenRoot(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nothingToUndo("%s is gone", filepath.Dir(path))
	}
	return r, err
}

// removeMade removes what the agent made at path, a whole tree for a
// directory, and nothing else.
func removeMade(path string, made *madeID) error {
	parent, err := openParent(path)
	if err != nil {
		return err
	}
	defer parent.Close()
	if _, err := madeAt(parent, path, made); err != nil {
		return err
	}
	return parent.RemoveAll(filepath.Base(path))
}

// clearForBackup makes path ready for its backup to be renamed over it:
// nothing there, what the agent made as a file or symlink (the rename
// replaces it), or what the agent made as a directory, removed.
func clearForBackup(path string, made *madeID) error {
	parent, err := openParent(path)
	if errors.Is(err, errNothingToUndo) {
		return nil
	}
	if err != nil {
		return err
	}
	defer parent.Close()
	fi, err := madeAt(parent, path, made)
	switch {
	case errors.Is(err, errNothingToUndo):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return parent.RemoveAll(filepath.Base(path))
	}
	return nil
}
