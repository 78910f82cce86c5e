package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The on-disk journal is an append-only log:
//
//	header:  "LNSTJRNL" | version (uint32)
//	record:  length (uint32) | CRC32-C of payload (uint32) | payload
//
// Integers are little-endian. A payload is the JSON of a journalRecord: an
// "add" record carries an undo entry, a "done" record the sequence number
// of an entry that was taken back (or tried: a failed undo was reported to
// its caller and is not tried again). An "add" record is on disk
// (fdatasync) before the call that wrote it returns. "Done" records are
// group-committed: those of one Restore (or one recovery) go to disk in
// one write and one fdatasync per restoreDoneBatch (16384) entries, after their
// undos were applied. A crash before that sync replays those undos, which
// then find nothing to undo (the route is gone, the value is in place):
// never the other way round, a change left with its undo marked done.
// When no entry is left without its "done" record the file is truncated
// to its header.
//
// Reading tolerates a torn tail, what a crash in the middle of an append
// leaves: a last record cut short, a last record whose CRC does not match,
// or a tail of zero bytes. It is cut away. A bad record with good records
// after it is corruption: opening fails with a *JournalCorruptError unless
// the caller asked to skip bad records.
const (
	journalMagic     = "LNSTJRNL"
	journalVersion   = 1
	journalHeaderLen = len(journalMagic) + 4
	recordHeaderLen  = 8
	// maxRecordLen bounds a record's payload; a longer one is corrupt.
	maxRecordLen = 1 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// The record operations.
const (
	recordAdd  = "add"
	recordDone = "done"
)

// journalRecord is the payload of one record.
type journalRecord struct {
	Op    string `json:"op"`
	Entry *undo  `json:"entry,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
}

// journalHeader returns the header of a journal file.
func journalHeader() []byte {
	b := make([]byte, journalHeaderLen)
	copy(b, journalMagic)
	binary.LittleEndian.PutUint32(b[len(journalMagic):], journalVersion)
	return b
}

// encodeRecord frames r as it is appended to the file.
func encodeRecord(r journalRecord) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode journal record: %w", err)
	}
	if len(payload) > maxRecordLen {
		return nil, fmt.Errorf("encode journal record: %d bytes, more than %d", len(payload), maxRecordLen)
	}
	b := make([]byte, recordHeaderLen, recordHeaderLen+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crc32c))
	return append(b, payload...), nil
}

// appendDoneRecord appends the done record of seq, framed, to b: what
// encodeRecord makes of journalRecord{Op: recordDone, Seq: seq}, without
// reflection (a Restore writes one per entry).
func appendDoneRecord(b []byte, seq uint64) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeaderLen)...)
	b = append(b, `{"op":"done","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '}')
	payload := b[start+recordHeaderLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crc32c))
	return b
}

// JournalCorruptError reports a bad record in the middle of an on-disk
// journal: records after it are intact, so it is not the torn tail of a
// crash.
type JournalCorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *JournalCorruptError) Error() string {
	return fmt.Sprintf("journal %s is corrupt at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// decodedJournal is what decodeJournal found in a file's bytes.
type decodedJournal struct {
	records []journalRecord
	// valid is the length of the header and the records kept; a torn
	// tail starts there.
	valid int64
	// torn is what was wrong with the torn tail, if there is one.
	torn string
	// skipped are the corrupt records skipped (only when asked to).
	skipped []*JournalCorruptError
	// spans are where records[i] is in the file.
	spans []recSpan
}

// recSpan is where a record is in the file: its offset and its length,
// header included.
type recSpan struct{ off, n int64 }

// decodeJournal reads the bytes of the journal file path. An empty file, or
// one cut short within its header, is an empty journal (valid 0). With
// skipCorrupt a corrupt record is skipped (by its length) rather than
// failing the whole file.
func decodeJournal(path string, b []byte, skipCorrupt bool) (decodedJournal, error) {
	var d decodedJournal
	hdr := journalHeader()
	if len(b) < journalHeaderLen {
		if bytes.HasPrefix(hdr, b) || allZero(b) {
			if len(b) > 0 {
				d.torn = "header cut short"
			}
			return d, nil
		}
		return d, fmt.Errorf("journal %s is not an lnst-agent journal: it has %d bytes and does not start with %q", path, len(b), journalMagic)
	}
	if string(b[:len(journalMagic)]) != journalMagic {
		if allZero(b) {
			d.torn = "header never written"
			return d, nil
		}
		return d, fmt.Errorf("journal %s is not an lnst-agent journal: it starts with %q, not %q", path, b[:len(journalMagic)], journalMagic)
	}
	if v := binary.LittleEndian.Uint32(b[len(journalMagic):]); v != journalVersion {
		return d, fmt.Errorf("journal %s has format version %d; this agent reads version %d (undo it with the agent that wrote it, or move the file aside)", path, v, journalVersion)
	}
	off := int64(journalHeaderLen)
	d.valid = off
	size := int64(len(b))
	for off < size {
		rec, next, reason := decodeRecord(b, off)
		if reason == "" {
			d.records = append(d.records, rec)
			d.spans = append(d.spans, recSpan{off: off, n: next - off})
			off, d.valid = next, next
			continue
		}
		if next >= size || allZero(b[off:]) {
			d.torn = fmt.Sprintf("%s at offset %d", reason, off)
			return d, nil
		}
		cerr := &JournalCorruptError{Path: path, Offset: off, Reason: reason}
		if !skipCorrupt {
			return d, cerr
		}
		d.skipped = append(d.skipped, cerr)
		off = next
	}
	return d, nil
}

// decodeRecord decodes the record at off. It returns where the next record
// starts (at or past len(b) when the record is the last or is cut short)
// and, for a bad record, what is wrong with it.
func decodeRecord(b []byte, off int64) (journalRecord, int64, string) {
	size := int64(len(b))
	if size-off < recordHeaderLen {
		return journalRecord{}, size, "record header cut short"
	}
	n := int64(binary.LittleEndian.Uint32(b[off:]))
	sum := binary.LittleEndian.Uint32(b[off+4:])
	next := off + recordHeaderLen + n
	switch {
	case next > size:
		return journalRecord{}, next, fmt.Sprintf("record of %d bytes cut short at %d", n, size-off-recordHeaderLen)
	case n == 0 || n > maxRecordLen:
		return journalRecord{}, next, fmt.Sprintf("record length %d is out of range", n)
	}
	payload := b[off+recordHeaderLen : next]
	if got := crc32.Checksum(payload, crc32c); got != sum {
		return journalRecord{}, next, fmt.Sprintf("CRC32-C mismatch (record says %08x, payload has %08x)", sum, got)
	}
	var r journalRecord
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, next, fmt.Sprintf("payload is not a journal record: %v", err)
	}
	switch {
	case r.Op == recordAdd && r.Entry != nil && r.Entry.Seq != 0:
	case r.Op == recordDone && r.Seq != 0:
	default:
		return r, next, fmt.Sprintf("record %q is neither an add with an entry nor a done with a seq", payload)
	}
	return r, next, ""
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// pendingEntries returns the entries added and not done, oldest first.
func pendingEntries(records []journalRecord) []undo {
	added := map[uint64]undo{}
	for _, r := range records {
		switch r.Op {
		case recordAdd:
			added[r.Entry.Seq] = *r.Entry
		case recordDone:
			delete(added, r.Seq)
		}
	}
	out := make([]undo, 0, len(added))
	for _, u := range added {
		out = append(out, u)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out
}

// journalFile is an open on-disk journal. It holds an exclusive lock on
// the file (flock) for as long as it is open, so two agents never share
// one. It is not safe for concurrent use: the journal serialises calls.
type journalFile struct {
	path string
	f    *os.File
	// size is the length of the file's good part: a failed append is cut
	// back to it, so that a record half written never has records after it.
	size int64
	// pending are the sequence numbers added without a done record, each
	// with where its last add record is: a compaction copies those.
	pending map[uint64]recSpan
	// live is the length of the pending entries' last add records: what
	// a compaction keeps (see compactAt).
	live int64
	// minCompact is the garbage (bytes of done entries, done records and
	// superseded add records) below which the file is not compacted while
	// entries are pending; 0 is defaultMinCompact. Tests lower it.
	minCompact int64
}

// defaultMinCompact is journalFile.minCompact's default.
const defaultMinCompact = 1 << 20

// openedJournal is what openJournalFile found in the file.
type openedJournal struct {
	// left are the entries a previous run added and never took back,
	// oldest first.
	left []undo
	// torn says what torn tail was cut away ("" for none).
	torn string
	// skipped are the corrupt records skipped.
	skipped []*JournalCorruptError
}

// openJournalFile opens (creating it and its directory if need be) and
// locks the journal at path, reads what it holds and cuts away a torn tail.
func openJournalFile(path string, skipCorrupt bool) (*journalFile, openedJournal, error) {
	var o openedJournal
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, o, fmt.Errorf("journal %s: make its directory: %w", path, err)
	}
	if err := checkJournalDir(path); err != nil {
		return nil, o, err
	}
	f, err := openJournalAt(path, os.O_RDWR|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return nil, o, err
	}
	jf := &journalFile{path: path, f: f, pending: map[uint64]recSpan{}}
	o, err = jf.load(skipCorrupt)
	if err != nil {
		f.Close()
		return nil, o, err
	}
	return jf, o, nil
}

// checkJournalDir checks the directory of the journal at path: the
// journal says what the agent removes and writes back as root, so only
// the agent's user may change what is in that directory. It must be a
// directory (not a symlink to one) owned by the agent's effective user,
// without write permission for group or others.
func checkJournalDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("journal %s: its directory %s is a symlink: give the journal's real directory", path, dir)
	case !fi.IsDir():
		return fmt.Errorf("journal %s: %s is not a directory", path, dir)
	case st == nil || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("journal %s: its directory %s is not owned by the agent's user (uid %d): another user could change what the agent undoes", path, dir, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("journal %s: its directory %s is writable by group or others (mode %v): another user could change what the agent undoes; chmod go-w it", path, dir, fi.Mode().Perm())
	}
	return nil
}

// openJournalAt opens and locks the journal file at path (flag adds to
// O_NOFOLLOW: a symlink there is refused) and checks it is a regular file
// of the agent's user with no other link.
func openJournalAt(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("open journal %s: it is a symlink: the journal must be a file of its own", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("journal %s is a %v, not a regular file", path, fi.Mode().Type())
	case st == nil || int(st.Uid) != os.Geteuid():
		err = fmt.Errorf("journal %s is not owned by the agent's user (uid %d)", path, os.Geteuid())
	case st.Nlink > 1:
		err = fmt.Errorf("journal %s has %d hard links: the journal must be a file of its own", path, st.Nlink)
	}
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			err = fmt.Errorf("journal %s is in use by another agent (give each agent its own journal)", path)
		} else if err != nil {
			err = fmt.Errorf("lock journal %s: %w", path, err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (jf *journalFile) load(skipCorrupt bool) (openedJournal, error) {
	var o openedJournal
	b, err := io.ReadAll(io.NewSectionReader(jf.f, 0, 1<<62))
	if err != nil {
		return o, fmt.Errorf("read journal %s: %w", jf.path, err)
	}
	d, err := decodeJournal(jf.path, b, skipCorrupt)
	if err != nil {
		return o, err
	}
	o.torn, o.skipped = d.torn, d.skipped
	if d.valid == 0 {
		// New, empty, or cut short before its header was whole.
		if err := jf.reset(); err != nil {
			return o, err
		}
		return o, syncDir(jf.path)
	}
	if d.valid < int64(len(b)) {
		if err := jf.truncate(d.valid); err != nil {
			return o, fmt.Errorf("cut the torn tail of journal %s: %w", jf.path, err)
		}
	}
	jf.size = d.valid
	o.left = pendingEntries(d.records)
	for i, r := range d.records {
		switch r.Op {
		case recordAdd:
			jf.pending[r.Entry.Seq] = d.spans[i]
		case recordDone:
			delete(jf.pending, r.Seq)
		}
	}
	for _, sp := range jf.pending {
		jf.live += sp.n
	}
	return o, nil
}

// reset makes the file a bare header.
func (jf *journalFile) reset() error {
	if err := jf.f.Truncate(0); err != nil {
		return fmt.Errorf("reset journal %s: %w", jf.path, err)
	}
	jf.size = 0
	return jf.append(journalHeader())
}

func (jf *journalFile) truncate(n int64) error {
	if err := jf.f.Truncate(n); err != nil {
		return err
	}
	jf.size = n
	return unix.Fdatasync(int(jf.f.Fd()))
}

// append writes b at the end of the file and waits until it is on disk.
// On failure the file is cut back to what it was.
func (jf *journalFile) append(b []byte) error {
	_, err := jf.f.Write(b)
	if err == nil {
		err = unix.Fdatasync(int(jf.f.Fd()))
	}
	if err != nil {
		jf.f.Truncate(jf.size)
		return fmt.Errorf("write journal %s: %w", jf.path, err)
	}
	jf.size += int64(len(b))
	return nil
}

// add appends an add record for u.
func (jf *journalFile) add(u undo) error {
	b, err := encodeRecord(journalRecord{Op: recordAdd, Entry: &u})
	if err != nil {
		return err
	}
	off := jf.size
	if err := jf.append(b); err != nil {
		return err
	}
	jf.live += int64(len(b)) - jf.pending[u.Seq].n
	jf.pending[u.Seq] = recSpan{off: off, n: int64(len(b))}
	return nil
}

// done appends a done record for seq, if seq is pending; see doneMany.
func (jf *journalFile) done(seq uint64) error { return jf.doneMany([]uint64{seq}) }

// doneMany marks the pending ones of seqs done in one write and one
// fdatasync (group commit), and compacts the file: to its header when
// nothing is left pending (then the done records are not written: the
// truncation, synced, says it all), else when its garbage is past
// minCompact and past what is live.
func (jf *journalFile) doneMany(seqs []uint64) error {
	var freed int64
	marked := make(map[uint64]bool, len(seqs))
	for _, seq := range seqs {
		sp, ok := jf.pending[seq]
		if !ok || marked[seq] {
			continue
		}
		marked[seq] = true
		freed += sp.n
	}
	if len(marked) == 0 {
		return nil
	}
	if len(marked) == len(jf.pending) {
		if err := jf.truncate(int64(journalHeaderLen)); err != nil {
			return fmt.Errorf("compact journal %s: %w", jf.path, err)
		}
		clear(jf.pending)
		jf.live = 0
		return nil
	}
	b := make([]byte, 0, len(marked)*(recordHeaderLen+32))
	written := make(map[uint64]bool, len(marked))
	for _, seq := range seqs {
		if marked[seq] && !written[seq] {
			written[seq] = true
			b = appendDoneRecord(b, seq)
		}
	}
	if err := jf.append(b); err != nil {
		return err
	}
	for seq := range marked {
		delete(jf.pending, seq)
	}
	jf.live -= freed
	minCompact := jf.minCompact
	if minCompact == 0 {
		minCompact = defaultMinCompact
	}
	if garbage := jf.size - int64(journalHeaderLen) - jf.live; garbage >= minCompact && garbage >= jf.live {
		if err := jf.compact(); err != nil {
			// The file is whole as it was: only not compacted.
			return fmt.Errorf("compact journal %s: %w", jf.path, err)
		}
	}
	return nil
}

// compact rewrites the file with the pending entries only (the last add
// record of each, copied as they are: nothing is decoded), while entries
// are pending: a long-lived entry (a pool session's TempDir) otherwise
// kept every record after it on disk. The new file is written and locked
// beside the old one, synced, and renamed over it, so a crash leaves one
// whole journal or the other; the agent then holds the new file and its
// lock.
func (jf *journalFile) compact() error {
	b, err := io.ReadAll(io.NewSectionReader(jf.f, 0, jf.size))
	if err != nil {
		return err
	}
	seqs := make([]uint64, 0, len(jf.pending))
	for seq := range jf.pending {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	out := journalHeader()
	live := make(map[uint64]recSpan, len(seqs))
	var n int64
	for _, seq := range seqs {
		sp := jf.pending[seq]
		if sp.off < int64(journalHeaderLen) || sp.n < recordHeaderLen || sp.off+sp.n > int64(len(b)) {
			return fmt.Errorf("the add record of entry %d (offset %d, %d bytes) is outside the file's %d bytes", seq, sp.off, sp.n, len(b))
		}
		rec := b[sp.off : sp.off+sp.n]
		if int64(binary.LittleEndian.Uint32(rec))+recordHeaderLen != sp.n || crc32.Checksum(rec[recordHeaderLen:], crc32c) != binary.LittleEndian.Uint32(rec[4:]) {
			return fmt.Errorf("the add record of entry %d at offset %d is not whole", seq, sp.off)
		}
		live[seq] = recSpan{off: int64(len(out)), n: sp.n}
		out = append(out, rec...)
		n += sp.n
	}
	tmp := jf.path + ".compact"
	os.Remove(tmp) // one a crash left
	f, err := openJournalAt(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND)
	if err != nil {
		return err
	}
	_, err = f.Write(out)
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if err == nil {
		err = os.Rename(tmp, jf.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := syncDir(jf.path); err != nil {
		f.Close()
		return err
	}
	jf.f.Close()
	jf.f, jf.size, jf.pending, jf.live = f, int64(len(out)), live, n
	return nil
}

// close releases the file and its lock.
func (jf *journalFile) close() error { return jf.f.Close() }

// syncDir makes the creation of the file at path durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync directory of journal %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory of journal %s: %w", path, err)
	}
	return nil
}
