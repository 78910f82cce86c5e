package agent

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeJournal feeds arbitrary file contents to the journal decoder:
// it never panics; what it keeps (valid) is within the file, starts with a
// header when anything is kept, and re-encoding the kept records gives the
// kept bytes back exactly (so a torn tail is cut at a record boundary and
// nothing in the middle is lost or invented); a file it refuses gives a
// *JournalCorruptError or a message naming the file.
func FuzzDecodeJournal(f *testing.F) {
	good := journalHeader()
	for _, r := range []journalRecord{
		{Op: "add", Entry: &undo{Seq: 1, Group: "s/T#1", Op: opWriteValue, ValueKind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "0"}},
		{Op: "add", Entry: &undo{Seq: 2, Group: "s/T#1", Op: opDeleteLink, Link: "v0"}},
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
			again := journalHeader()
			for _, r := range d.records {
				enc, err := encodeRecord(r)
				if err != nil {
					t.Fatalf("a decoded record does not encode: %v", err)
				}
				again = append(again, enc...)
			}
			if !bytes.Equal(again, b[:d.valid]) {
				t.Fatalf("kept bytes do not re-encode to themselves:\nkept %q\nagain %q", b[:d.valid], again)
			}
		}
	})
}
