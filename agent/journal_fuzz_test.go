package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// FuzzDecodeJournal feeds arbitrary file contents to the journal decoder:
// it never panics; what it keeps (valid) is within the file, starts with a
// header when anything is kept, the kept bytes are whole frames, one a
// record kept (so a torn tail is cut at a record boundary and nothing in
// the middle is lost or invented), and re-encoding the kept records gives
// them back (an older agent wrote empty fields too: the bytes may differ,
// the records do not); a file it refuses gives a *JournalCorruptError or a
// message naming the file.
func FuzzDecodeJournal(f *testing.F) {
	good := journalHeader()
	for _, r := range []journalRecord{
		{Op: "add", Entry: &undo{Seq: 1, Group: "s/T#1", Op: opWriteValue, ValueKind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "0"}},
		{Op: "add", Entry: &undo{Seq: 2, Group: "s/T#1", Op: opDeleteLink, Link: "v0"}},
		{Op: "add", Entry: &undo{Seq: 3, Group: "s/T#1", Op: opRunCommand, Argv: []string{"/bin/sh", "-c", "ovs-vsctl del-br br9"}, Timeout: time.Minute}},
		{Op: "add", Entry: &undo{Seq: 4, Group: "s/T#1", Op: opRunCommand, Argv: []string{}}},
		{Op: "done", Seq: 1},
	} {
		b, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		good = append(good, b...)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(journalHeader())
	f.Add([]byte{})
	f.Add([]byte("LNSTJRNL\x02\x00\x00\x00"))
	f.Add(append(bytes.Clone(good[:journalHeaderLen+4]), 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, skip := range []bool{false, true} {
			d, err := decodeJournal("fuzz.journal", b, skip)
			if err != nil {
				var ce *JournalCorruptError
				if !errors.As(err, &ce) && !bytes.Contains([]byte(err.Error()), []byte("fuzz.journal")) {
					t.Fatalf("error does not name the file: %v", err)
				}
				continue
			}
			if d.valid < 0 || d.valid > int64(len(b)) {
				t.Fatalf("valid %d outside the file of %d bytes", d.valid, len(b))
			}
			if len(d.records) == 0 || len(d.skipped) > 0 {
				continue
			}
			// The kept bytes are whole frames, one a record kept.
			frames, off := 0, int64(journalHeaderLen)
			for off+recordHeaderLen <= d.valid {
				off += recordHeaderLen + int64(binary.LittleEndian.Uint32(b[off:]))
				frames++
			}
			if off != d.valid || frames != len(d.records) {
				t.Fatalf("kept %d bytes: %d whole frames ending at %d, for %d records", d.valid, frames, off, len(d.records))
			}
			// Re-encoding the records gives them back: records written
			// by an older agent (every field, empty ones too) re-encode
			// shorter but to the same entries.
			again := journalHeader()
			for _, r := range d.records {
				enc, err := encodeRecord(r)
				if err != nil {
					t.Fatalf("a decoded record does not encode: %v", err)
				}
				again = append(again, enc...)
			}
			d2, err := decodeJournal("fuzz.journal", again, false)
			if err != nil {
				t.Fatalf("re-encoded records do not decode: %v", err)
			}
			if d2.valid != int64(len(again)) || !reflect.DeepEqual(d2.records, d.records) {
				t.Fatalf("kept records do not re-encode to themselves:\nkept %q\nagain %q", b[:d.valid], again)
			}
		}
	})
}

// testSandbox is a tree FuzzReplayUndo replays entries in: what a
// previous agent made (made/…, its backups) and what it did not (keep/…,
// the directories around).
type testSandbox struct {
	root string
	// made are the identities of what the agent made, the entries' Made
	// to choose from; backups are the agent's backup files.
	made    []*madeID
	backups []string
	// outside are the paths the agent did not make, with their identity
	// and, for files, their content.
	outside map[string]testOutside
}

type testOutside struct {
	id      madeID
	content string
}

func newTestSandbox(t *testing.T) *testSandbox {
	root := t.TempDir()
	sb := &testSandbox{root: root, outside: map[string]testOutside{}}
	p := func(s string) string { return filepath.Join(root, s) }
	for _, d := range []string{"state/lnst-backups", "made/dir/sub", "keep/dir"} {
		if err := os.MkdirAll(p(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{"made/dir/sub/x", "made/dir/y", "made/file", "keep/file", "keep/dir/z", "state/lnst-backups/0-file", "state/lnst-backups/1-file", "state/lnst-backups/2-dir"}
	for _, f := range files {
		if err := os.WriteFile(p(f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for old, new := range map[string]string{"../keep/file": "made/link", "../made": "keep/link"} {
		if err := os.Symlink(old, p(new)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"made/dir", "made/dir/sub", "made/dir/sub/x", "made/dir/y", "made/file", "made/link"} {
		sb.made = append(sb.made, testMade(t, p(m)))
	}
	for _, b := range []string{"0-file", "1-file", "2-dir"} {
		sb.backups = append(sb.backups, p("state/lnst-backups/"+b))
	}
	for _, o := range []string{"", "state", "made", "keep", "keep/file", "keep/dir", "keep/dir/z", "keep/link"} {
		path := p(o)
		b, _ := os.ReadFile(path) // "" for a directory
		sb.outside[path] = testOutside{*testMade(t, path), string(b)}
	}
	return sb
}

// entries decodes ops, three bytes an entry (path, made, backup), into
// remove-path entries on the sandbox; s is an arbitrary name in it. A made
// byte of 255 makes a run-command entry instead: its command, the kind a
// recipe gives (lnsttest.Undo), appends a line to made/ran-<seq>. Every
// remove-path entry also carries, in Argv, a command that would remove
// what the agent did not make: only a run-command entry may run its Argv.
func (sb *testSandbox) entries(ops []byte, s string) []undo {
	paths := []string{"/", s, sb.root + "/" + s, sb.root + "/made/" + s, sb.root + "/keep/" + s}
	for _, rel := range []string{"", "state", "made", "keep", "made/dir", "made/dir/sub", "made/dir/sub/x", "made/dir/y", "made/file", "made/link",
		"keep/file", "keep/dir", "keep/dir/z", "keep/link", "keep/link/file", "keep/link/dir", "keep/new", "state/lnst-backups", "state/lnst-backups/0-file"} {
		paths = append(paths, filepath.Join(sb.root, rel))
	}
	backups := append([]string{"", s, sb.root + "/keep/file", sb.root + "/state/lnst-backups/../../keep/file",
		sb.root + "/state/lnst-backups/" + s, sb.root + "/keep/link/file"}, sb.backups...)
	var us []undo
	for i := 0; i+3 <= len(ops); i += 3 {
		seq := uint64(len(us) + 1)
		if ops[i+1] == 255 {
			us = append(us, undo{Seq: seq, Group: "g", Op: opRunCommand,
				Argv: []string{"/bin/sh", "-c", `echo ran >> "$0"`, sb.ranFile(seq)}, Timeout: 30 * time.Second})
			continue
		}
		u := undo{Seq: seq, Group: "g", Op: opRemovePath, Path: paths[int(ops[i])%len(paths)], Backup: backups[int(ops[i+2])%len(backups)],
			Argv: []string{"/bin/rm", "-rf", sb.root + "/keep", sb.root + "/state"}}
		switch m := int(ops[i+1]); {
		case m == 0:
		case m <= len(sb.made):
			u.Made = sb.made[m-1]
		default:
			// Device 0 is no filesystem's: this identity is nothing's.
			u.Made = &madeID{Dev: 0, Ino: uint64(m)}
		}
		us = append(us, u)
	}
	return us
}

// ranFile is where the run-command entry seq leaves its mark.
func (sb *testSandbox) ranFile(seq uint64) string {
	return filepath.Join(sb.root, "made", fmt.Sprintf("ran-%d", seq))
}

// FuzzReplayUndo replays arbitrary remove-path entries (paths in and out
// of what the agent made, "/", relative and unclean paths, backups in and
// out of its backup directory, identities of what it made or of nothing)
// in a sandbox: nothing the agent did not make is ever removed, renamed or
// replaced. The entries never name the identity of something the agent
// did not make: that is what the journal records, and the journal is the
// agent's own file (checkJournalDir).
//
// Run-command entries (undocmd.go) are among them, on the agent's own
// host: each runs its command once, and no other entry runs the command
// it carries. What a run-command entry's command does is the recipe's:
// the property is about what the agent removes on its own, so the
// commands here are of the kind a recipe gives, touching only made/.
func FuzzReplayUndo(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 1, 0, 2, 1, 0}, "x")
	f.Add([]byte{9, 1, 0, 13, 5, 6, 14, 5, 7, 15, 1, 2, 16, 200, 0, 19, 6, 8}, "../keep/file")
	f.Add([]byte{5, 1, 0, 10, 1, 0, 8, 0, 0, 12, 3, 1}, "dir")
	f.Add([]byte{20, 5, 6, 20, 5, 7, 20, 5, 8, 11, 2, 0}, "link/file")
	f.Add([]byte{13, 255, 0, 13, 5, 6, 3, 255, 0, 16, 1, 2}, "ran-1")
	f.Fuzz(func(t *testing.T, ops []byte, s string) {
		if len(ops) > 3*32 {
			ops = ops[:3*32]
		}
		sb := newTestSandbox(t)
		srv := testReplayServer(filepath.Join(sb.root, "state", "journal"), hclog.NewNullLogger())
		srv.hosts[""] = &host{ns: -1, jobs: map[int64]*job{}}
		entries := sb.entries(ops, s)
		srv.recoverEntries("fuzz", slices.Clone(entries))
		for _, u := range entries {
			if u.Op != opRunCommand {
				continue
			}
			if b, err := os.ReadFile(sb.ranFile(u.Seq)); err != nil || string(b) != "ran\n" {
				t.Fatalf("run-command entry %d did not run once: %q, %v", u.Seq, b, err)
			}
		}
		for path, o := range sb.outside {
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatalf("%s, which the agent did not make, is gone: %v", path, err)
			}
			if got := madeIDOf(fi); *got != o.id {
				t.Fatalf("%s, which the agent did not make, was replaced: %v, was %v", path, got, &o.id)
			}
			if fi.Mode().IsRegular() {
				if b, err := os.ReadFile(path); err != nil || string(b) != o.content {
					t.Fatalf("%s, which the agent did not make, was changed: %q, %v", path, b, err)
				}
			}
		}
	})
}
