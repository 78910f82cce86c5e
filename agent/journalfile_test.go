package agent

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testJournalPath is a journal file in a fresh directory.
func testJournalPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "state", "journal")
}

// testOpenJournal opens the journal at path and closes it at cleanup.
func testOpenJournal(t *testing.T, path string, skipCorrupt bool) (*journalFile, openedJournal) {
	t.Helper()
	jf, o, err := openJournalFile(path, skipCorrupt)
	require.NoError(t, err, "open journal %s", path)
	t.Cleanup(func() { jf.close() })
	return jf, o
}

// testWriteJournal writes a journal with entries 1..n on the agent's host
// and returns its path and the offset where each record starts.
func testWriteJournal(t *testing.T, n int) (string, []int64) {
	t.Helper()
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	var offs []int64
	for i := 1; i <= n; i++ {
		offs = append(offs, jf.size)
		require.NoError(t, jf.add(undo{Seq: uint64(i), Group: "g", Op: opDeleteLink, Link: "v" + string(rune('0'+i))}))
	}
	require.NoError(t, jf.close())
	return path, offs
}

func testFileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

func TestJournalFileNewHasHeader(t *testing.T) {
	path := testJournalPath(t)
	_, o := testOpenJournal(t, path, false)
	assert.Empty(t, o.left)
	assert.Empty(t, o.torn)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "LNSTJRNL\x01\x00\x00\x00", string(b))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestJournalFileEmptyOrShortHeader(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "short header": "LNST", "zeros": "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"} {
		t.Run(name, func(t *testing.T) {
			path := testJournalPath(t)
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			_, o := testOpenJournal(t, path, false)
			assert.Empty(t, o.left)
			assert.Equal(t, int64(journalHeaderLen), testFileSize(t, path), "a fresh header")
		})
	}
}

func TestJournalFileRoundTrip(t *testing.T) {
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	up, mtu, master := true, 1400, ""
	entries := []undo{
		{Seq: 1, Group: "g", Op: opDeleteLink, Link: "v0"},
		{Seq: 2, Group: "g", Op: opSetLink, Link: "v0", Up: &up, MTU: &mtu, Master: &master, HWAddr: []byte{2, 0, 0, 0, 0, 1}},
		{Seq: 3, Group: "h", Op: opAddAddr, Link: "eth0", CIDR: "198.18.0.1/24"},
		{Seq: 4, Group: "g", Op: opWriteValue, ValueKind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "0"},
		{Seq: 5, Group: "g", Op: opDelRoute, Route: route{Dst: "198.18.1.0/24", Dev: "v0", Table: 100, Metric: 5, Family: 4}},
		{Seq: 6, Group: "g", Op: opSetFeatures, Link: "v0", Features: map[string]bool{"rx-checksum": true, "tx-checksum-ip-generic": false}},
		{Seq: 7, Group: "g", Op: opCreateLink, Kind: "veth", Link: "a0", Peer: "a1"},
	}
	for _, u := range entries {
		require.NoError(t, jf.add(u))
	}
	require.NoError(t, jf.done(3))
	require.NoError(t, jf.done(42), "a seq never added is ignored")
	require.NoError(t, jf.close())

	jf, o := testOpenJournal(t, path, false)
	assert.Empty(t, o.torn)
	want := append(append([]undo{}, entries[:2]...), entries[3:]...)
	assert.Equal(t, want, o.left, "every entry but the one done, oldest first, every field kept")

	for _, u := range want {
		require.NoError(t, jf.done(u.Seq))
	}
	assert.Equal(t, int64(journalHeaderLen), testFileSize(t, path), "compacted once every entry is done")
	require.NoError(t, jf.add(undo{Seq: 8, Group: "g", Op: opDeleteLink, Link: "x"}))
	require.NoError(t, jf.close())
	_, o = testOpenJournal(t, path, false)
	require.Len(t, o.left, 1, "appends after compaction")
	assert.Equal(t, uint64(8), o.left[0].Seq)
}

func TestJournalFileTornTail(t *testing.T) {
	path, offs := testWriteJournal(t, 3)
	full := testFileSize(t, path)
	cases := map[string]func(b []byte) []byte{
		"record cut short":        func(b []byte) []byte { return b[:full-5] },
		"record header cut short": func(b []byte) []byte { return b[:offs[2]+3] },
		"CRC mismatch":            func(b []byte) []byte { b[full-2] ^= 0xff; return b },
		"zero tail":               func(b []byte) []byte { return append(b[:offs[2]], make([]byte, 64)...) },
	}
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	for name, tear := range cases {
		t.Run(name, func(t *testing.T) {
			p := testJournalPath(t)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
			require.NoError(t, os.WriteFile(p, tear(append([]byte{}, orig...)), 0o600))
			_, o := testOpenJournal(t, p, false)
			assert.NotEmpty(t, o.torn)
			assert.Equal(t, []uint64{1, 2}, testSeqs(o.left), "the whole records are kept")
			assert.Equal(t, offs[2], testFileSize(t, p), "the torn tail is cut away")
		})
	}
}

func TestJournalFileCorruptInTheMiddle(t *testing.T) {
	path, offs := testWriteJournal(t, 3)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[offs[1]+recordHeaderLen+3] ^= 0xff // in the payload of record 2
	require.NoError(t, os.WriteFile(path, b, 0o600))

	_, _, err = openJournalFile(path, false)
	var ce *JournalCorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, path, ce.Path)
	assert.Equal(t, offs[1], ce.Offset)
	assert.Contains(t, err.Error(), "journal "+path+" is corrupt at offset")
	assert.Contains(t, err.Error(), "CRC32-C mismatch")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, b, after, "a corrupt journal is left as it is")

	_, o := testOpenJournal(t, path, true)
	assert.Equal(t, []uint64{1, 3}, testSeqs(o.left), "skipping the bad record keeps the rest")
	require.Len(t, o.skipped, 1)
	assert.Equal(t, offs[1], o.skipped[0].Offset)
}

func TestJournalFileBadHeader(t *testing.T) {
	path := testJournalPath(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	hdr := journalHeader()
	binary.LittleEndian.PutUint32(hdr[len(journalMagic):], 2)
	require.NoError(t, os.WriteFile(path, hdr, 0o600))
	_, _, err := openJournalFile(path, false)
	assert.ErrorContains(t, err, "has format version 2; this agent reads version 1")

	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\necho hello\n"), 0o600))
	_, _, err = openJournalFile(path, true)
	assert.ErrorContains(t, err, "is not an lnst-agent journal")
}

func TestJournalFileLocked(t *testing.T) {
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	_, _, err := openJournalFile(path, false)
	assert.ErrorContains(t, err, "is in use by another agent")
	require.NoError(t, jf.close())
	testOpenJournal(t, path, false)
}

// TestJournalWriteAhead checks reserve, commit and abandon: a reserved
// entry is on disk at once, and take sees it only once committed.
func TestJournalWriteAhead(t *testing.T) {
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	j := journal{file: jf}
	u := undo{Group: "g", Op: opDeleteLink, Link: "v0"}
	require.True(t, j.writesAhead(u))
	assert.False(t, j.writesAhead(undo{Group: "g", Op: opDeleteLink, Host: "h1"}), "namespace hosts end with the agent")

	r1, err := j.reserve(u)
	require.NoError(t, err)
	assert.Empty(t, j.take("g", 0, false), "reserved, not yet committed")
	r2, err := j.reserve(u)
	require.NoError(t, err)
	assert.Greater(t, r2.Seq, r1.Seq)
	assert.ElementsMatch(t, []uint64{r1.Seq, r2.Seq}, slices.Collect(maps.Keys(jf.pending)), "both on disk")

	j.commit(r1)
	require.NoError(t, j.abandon(r2))
	assert.Equal(t, []uint64{r1.Seq}, slices.Collect(maps.Keys(jf.pending)))
	taken := j.take("g", 0, false)
	assert.Equal(t, []uint64{r1.Seq}, testSeqs(taken))
	require.NoError(t, j.done(r1.Seq))
	assert.Equal(t, int64(journalHeaderLen), testFileSize(t, path))

	// Entries that die with the agent stay off disk.
	_, err = j.add(undo{Group: "g", Op: opDestroyHost, Host: "h1"})
	require.NoError(t, err)
	assert.Empty(t, jf.pending)
}

// TestJournalDoneManyAfterReopen marks entries done in batches on a
// journal reopened (its records' places read from the file), with
// compaction at every batch, and checks the file then holds exactly the
// entries left, and none once all are done.
func TestJournalDoneManyAfterReopen(t *testing.T) {
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	var us []undo
	for i := range 100 {
		us = append(us, undo{Seq: uint64(i + 1), Group: "g", Op: opDelRoute, Route: route{Dst: fmt.Sprintf("198.19.0.%d/32", i), Dev: "lo"}})
	}
	require.NoError(t, jf.addMany(us[:60]))
	require.NoError(t, jf.close())
	jf, o := testOpenJournal(t, path, false)
	require.Len(t, o.left, 60)
	jf.minCompact = 1
	require.NoError(t, jf.addMany(us[60:]))
	// Entries added since the reopen and a few of those read back: the
	// compaction copies the records read back.
	var seqs []uint64
	for _, u := range append(slices.Clone(us[60:]), us[:10]...) {
		seqs = append(seqs, u.Seq)
	}
	require.NoError(t, jf.doneMany(seqs[:20]))
	before := testFileSize(t, path)
	require.NoError(t, jf.doneMany(append(seqs[20:], seqs[:3]...)), "seqs done already are left alone")
	require.Less(t, testFileSize(t, path), before, "compacted")
	require.NoError(t, jf.close())
	jf, o = testOpenJournal(t, path, false)
	assert.Equal(t, us[10:60], o.left)
	var rest []uint64
	for _, u := range us[10:60] {
		rest = append(rest, u.Seq)
	}
	require.NoError(t, jf.doneMany(rest))
	assert.Equal(t, int64(journalHeaderLen), testFileSize(t, path))
}

// TestAppendDoneRecord checks the hand-framed done record against
// encodeRecord's.
func TestAppendDoneRecord(t *testing.T) {
	for _, seq := range []uint64{1, 42, 1 << 40} {
		want, err := encodeRecord(journalRecord{Op: recordDone, Seq: seq})
		require.NoError(t, err)
		assert.Equal(t, want, appendDoneRecord([]byte("x"), seq)[1:], "seq %d", seq)
	}
}
