package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/hashicorp/go-hclog"
)

// openJournal opens the on-disk journal at opts.JournalPath and takes back
// what a previous agent process left in it: that process crashed (or was
// killed) before it could. Its entries are undone newest first, each undo
// logged at Info and each failure at Error; entries on namespace hosts are
// dropped, as their namespaces died with that process. Then the file is
// compacted to its header.
func (s *Server) openJournal(opts Options) error {
	jf, o, err := openJournalFile(opts.JournalPath, opts.JournalSkipCorrupt)
	if err != nil {
		return err
	}
	if o.torn != "" {
		s.log.Warn("journal: cut away the torn tail a crash left", "journal", jf.path, "tail", o.torn)
	}
	for _, c := range o.skipped {
		s.log.Error("journal: skipped a corrupt record; its change, if any, is not taken back", "journal", c.Path, "offset", c.Offset, "reason", c.Reason)
	}
	s.journal.mu.Lock()
	s.journal.file = jf
	for _, u := range o.left {
		s.journal.seq = max(s.journal.seq, u.Seq)
	}
	s.journal.mu.Unlock()
	if len(o.left) > 0 {
		s.recoverEntries(jf.path, o.left)
	}
	return nil
}

// recoverEntries takes back the entries a previous process left, newest
// first.
func (s *Server) recoverEntries(path string, left []undo) {
	s.log.Warn("journal: a previous agent left changes: taking them back", "journal", path, "entries", len(left))
	sort.Slice(left, func(a, b int) bool { return left[a].Seq > left[b].Seq })
	failed := 0
	var done []uint64
	for _, u := range left {
		if !durable(u) {
			s.log.Info("journal: dropped an entry of the previous agent: its namespace host, network or job died with it", "undo", u.String(), "seq", u.Seq, "group", u.Group)
			done = append(done, u.Seq)
			continue
		}
		if s.applyLogged(u, hclog.Info) != nil {
			failed++
		}
		done = append(done, u.Seq)
		if len(done) >= restoreDoneBatch {
			s.markDone(done)
			done = done[:0]
		}
	}
	s.markDone(done)
	s.log.Info("journal: previous agent's changes taken back", "journal", path, "entries", len(left), "failed", failed)
}

// restoreDoneBatch is how many undone entries share one write and one
// fdatasync of their done records: a Restore of 10,000 routes paid one
// fdatasync per route, 16 times the time of taking them back. It bounds
// what a crash in the middle of a big Restore replays.
const restoreDoneBatch = 16384

// markDone marks the entries seqs, whose undos were applied (or tried),
// done in the journal, in one write and one fdatasync.
func (s *Server) markDone(seqs []uint64) {
	if err := s.journal.doneMany(seqs); err != nil {
		s.log.Error("journal: mark entries done; after a crash they would be taken back again", "entries", len(seqs), "error", err)
	}
}

// applyLogged applies u; its caller marks it done in the journal. It logs
// the outcome: at level when undone, at Info when there was nothing to
// undo, at Error when it failed; a failure is returned, naming the entry.
func (s *Server) applyLogged(u undo, level hclog.Level) error {
	err := s.apply(u)
	switch {
	case errors.Is(err, errNothingToUndo):
		s.log.Info("undo skipped: nothing to undo", "undo", u.String(), "seq", u.Seq, "group", u.Group, "reason", err)
		return nil
	case err != nil:
		s.log.Error("undo failed", "undo", u.String(), "seq", u.Seq, "group", u.Group, "error", err)
		return fmt.Errorf("%s: %w", u, err)
	}
	if l := s.log.GetLevel(); l != hclog.Off && l != hclog.NoLevel && l <= level {
		// u.String is not free: a Restore of many routes skips it.
		s.log.Log(level, "undone", "undo", u.String(), "seq", u.Seq, "group", u.Group)
	}
	return nil
}

// goneIfMissing turns the error of writing a value back into
// errNothingToUndo when the file is missing: the change read the old
// value from that file, so what held it (a device, mostly) is gone.
func goneIfMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nothingToUndo("%v", err)
	}
	return err
}
