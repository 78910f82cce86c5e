package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// An agent started on a journal numbers its jobs on from where the agents
// before it on that journal could have got: results files are named by
// job ids, and the agent of a pool machine or a VM lab guest starts again
// after every Reboot or HardReset within one run. Start n numbers its
// jobs from n*jobsPerStart+1.

// jobsPerStart is how many job ids each start of an agent on a journal
// has.
const jobsPerStart = 100000

// startsFile is the file beside a journal that counts the agents started
// on it.
func startsFile(journal string) string { return journal + ".starts" }

// countStarts reads the number of earlier starts from the file at path
// (none when it is missing), writes it back plus one and returns it. The file is
// replaced by a synced rename, so a reset (HardReset) leaves the old count
// or the new one. Should it be unreadable all the same, the count goes on
// from a random one above any plausible count, with the error.
func countStarts(path string) (int, error) {
	n := 0
	var bad error
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n < 0 {
			n, bad = 1000+rand.IntN(9000), fmt.Errorf("start count %s: %q is not a count", path, b)
		}
	case !errors.Is(err, fs.ErrNotExist):
		n, bad = 1000+rand.IntN(9000), fmt.Errorf("start count: %w", err)
	}
	if err := writeSynced(path, []byte(strconv.Itoa(n+1)+"\n")); err != nil {
		return n, errors.Join(bad, fmt.Errorf("start count: %w", err))
	}
	return n, bad
}

// writeSynced replaces the file at path with data: a synced temporary
// file renamed over it, and the directory synced.
func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
