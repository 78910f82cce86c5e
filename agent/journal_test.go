package agent

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSeqs lists the sequence numbers of entries, in their order.
func testSeqs(entries []undo) []uint64 {
	var seqs []uint64
	for _, u := range entries {
		seqs = append(seqs, u.Seq)
	}
	return seqs
}

func TestJournalAddNumbersEntriesInOrder(t *testing.T) {
	var j journal
	for want := uint64(1); want <= 3; want++ {
		got, err := j.add(undo{Group: "g", Op: opDeleteLink, Link: "x", Seq: 99})
		require.NoError(t, err)
		assert.Equal(t, want, got, "add ignores a Seq set by the caller")
	}
	assert.Equal(t, []uint64{1, 2, 3}, testSeqs(j.entries))
}

func TestJournalTakeGroupNewestFirst(t *testing.T) {
	var j journal
	j.add(undo{Group: "a", Link: "a1"}) // 1
	j.add(undo{Group: "b", Link: "b1"}) // 2
	j.add(undo{Group: "a", Link: "a2"}) // 3
	j.add(undo{Group: "b", Link: "b2"}) // 4
	j.add(undo{Group: "a", Link: "a3"}) // 5

	taken := j.take("a", 0, false)
	assert.Equal(t, []uint64{5, 3, 1}, testSeqs(taken), "group a, newest first")
	for _, u := range taken {
		assert.Equal(t, "a", u.Group)
	}
	assert.Equal(t, []uint64{2, 4}, testSeqs(j.entries), "group b is kept, in order")
	assert.Empty(t, j.take("a", 0, false), "a group is taken only once")
	assert.Empty(t, j.take("c", 0, false), "an unknown group has nothing")

	// Sequence numbers keep growing after a take.
	seq, err := j.add(undo{Group: "a"})
	require.NoError(t, err)
	assert.Equal(t, uint64(6), seq)
}

func TestJournalTakeSince(t *testing.T) {
	var j journal
	for i := 0; i < 6; i++ {
		group := "a"
		if i%2 == 1 {
			group = "b"
		}
		j.add(undo{Group: group}) // a:1,3,5 b:2,4,6
	}
	assert.Equal(t, []uint64{5, 3}, testSeqs(j.take("a", 3, false)), "since is inclusive")
	assert.Equal(t, []uint64{1}, testSeqs(j.take("a", 0, false)), "the older entry was kept")
	assert.Empty(t, j.take("b", 7, false), "nothing at or after since")
	assert.Equal(t, []uint64{2, 4, 6}, testSeqs(j.entries))
}

func TestJournalTakeAll(t *testing.T) {
	var j journal
	j.add(undo{Group: "a"})
	j.add(undo{Group: "b"})
	j.add(undo{Group: ""})
	j.add(undo{Group: "c"})
	assert.Equal(t, []uint64{4, 3}, testSeqs(j.take("ignored", 3, true)), "all ignores the group, not since")
	assert.Equal(t, []uint64{2, 1}, testSeqs(j.take("", 0, true)))
	assert.Empty(t, j.entries)
}

func TestUndoString(t *testing.T) {
	up, mtu, master := true, 1400, "br0"
	cases := []struct {
		u    undo
		want string
	}{
		{undo{Op: opDeleteLink, Link: "v0", Host: "h1"}, `delete link v0 on host "h1"`},
		{undo{Op: opCreateLink, Kind: "veth", Link: "v0", Peer: "v1", Host: "h1"}, `recreate veth link v0 on host "h1"`},
		{undo{Op: opSetLink, Link: "v0", Host: "h1", Up: &up, MTU: &mtu, Master: &master}, `restore settings of link v0 on host "h1"`},
		{undo{Op: opAddAddr, CIDR: "198.18.0.1/24", Link: "eth0", Host: "h1"}, `add address 198.18.0.1/24 back to eth0 on host "h1"`},
		{undo{Op: opDelAddr, CIDR: "2001:db8::1/64", Link: "eth0", Host: "h1"}, `remove address 2001:db8::1/64 from eth0 on host "h1"`},
		{undo{Op: opWriteValue, ValueKind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "0", Host: ""}, `write sysctl net.ipv4.ip_forward = "0" back on the agent's own host`},
		{undo{Op: opWriteValue, ValueKind: kindSysfs, Key: "/sys/class/net/lo/mtu", Value: "65536\n", Host: "h2"}, `write sysfs /sys/class/net/lo/mtu = "65536\n" back on host "h2"`},
		{undo{Op: opStopJob, Job: 42, Host: "h1"}, `stop job 42 on host "h1"`},
		{undo{Op: opDestroyHost, Host: "h1"}, `destroy host "h1"`},
		{undo{Op: opDestroyNetwork, Network: "n1"}, `destroy network "n1"`},
		{undo{Op: "frobnicate"}, "unknown undo frobnicate"},
		{undo{}, "unknown undo "},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.u.String(), "op %q", c.u.Op)
	}
}

// TestPartChangeJournalFailureInternal: a change that failed after part
// of it was made (here AddAddr, whose address may be there, tentative)
// journals the undo of that part; when the journal cannot write it, the
// call fails with Internal naming both failures, as a whole change whose
// undo is not on disk does, and does not hide the journal's failure.
func TestPartChangeJournalFailureInternal(t *testing.T) {
	path := testJournalPath(t)
	srv, c := testServerOpts(t, Options{JournalPath: path})
	ro, err := os.Open(path)
	require.NoError(t, err)
	jf := srv.journal.file
	rw := jf.f
	jf.f = ro // writes fail: the fd is read-only
	t.Cleanup(func() { jf.f = rw; ro.Close() })

	// A change that failed with part of it made (as AddAddr whose
	// address stayed tentative, or SetLink that set the MTU and then
	// failed).
	const dev = "lnstnodev0"
	_, err = srv.partChange("g", undo{Op: opDelAddr, Link: dev, CIDR: "198.18.0.1/24"}, fmt.Errorf("address on %s: DAD did not end", dev))
	testCode(t, err, codes.Internal, dev, "not on disk", `group "g"`)

	jf.f = rw
	assert.Equal(t, int32(1), testRestoreCount(t, c, "g"), "the undo of the part made is kept")
}

// TestRecordKeepsEntryWhenDiskFails: record returns Internal when the
// undo cannot go to disk, and keeps the entry for Restore.
func TestRecordKeepsEntryWhenDiskFails(t *testing.T) {
	path := testJournalPath(t)
	srv, err := NewServer(Options{JournalPath: path})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown() })
	ro, err := os.Open(path)
	require.NoError(t, err)
	defer ro.Close()
	rw := srv.journal.file.f
	srv.journal.file.f = ro
	seq, err := srv.record("g", undo{Op: opWriteValue, ValueKind: "sysctl", Key: "net.ipv4.ip_forward", Value: "0"})
	srv.journal.file.f = rw
	testCode(t, err, codes.Internal, "not on disk")
	taken := srv.journal.take("g", 0, false)
	require.Len(t, taken, 1)
	assert.Equal(t, seq, taken[0].Seq)
	assert.Equal(t, "g", taken[0].Group)
}

// TestJournalTakeSinceLateCommits takes entries since a point, and by
// group, from a journal where reserved entries were committed late (out
// of Seq order), against a plain filter of every entry: take finds the
// tail from since by Seq, so it must not miss an entry committed after a
// later one.
func TestJournalTakeSinceLateCommits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var j journal
		var model []undo
		var reserved []undo
		for range 30 {
			group := fmt.Sprintf("g%d", r.IntN(2))
			switch r.IntN(4) {
			case 0:
				u, err := j.reserve(undo{Group: group})
				require.NoError(t, err)
				reserved = append(reserved, u)
			case 1:
				if len(reserved) > 0 {
					k := r.IntN(len(reserved))
					j.commit(reserved[k])
					model = append(model, reserved[k])
					reserved = slices.Delete(reserved, k, k+1)
				}
			default:
				seq, err := j.add(undo{Group: group})
				require.NoError(t, err)
				model = append(model, undo{Group: group, Seq: seq})
			}
			if r.IntN(5) == 0 {
				group, since := fmt.Sprintf("g%d", r.IntN(2)), uint64(r.IntN(int(j.seq)+2))
				var want, kept []uint64
				for _, u := range model {
					if u.Group == group && u.Seq >= since {
						want = append(want, u.Seq)
					} else {
						kept = append(kept, u.Seq)
					}
				}
				slices.Sort(want)
				slices.Reverse(want)
				slices.Sort(kept)
				got := j.take(group, since, false)
				require.Equal(t, want, testSeqs(got), "round %d: take %s since %d", round, group, since)
				left := testSeqs(j.entries)
				slices.Sort(left)
				require.Equal(t, kept, left, "round %d: kept after take %s since %d", round, group, since)
				model = slices.DeleteFunc(model, func(u undo) bool { return u.Group == group && u.Seq >= since })
			}
		}
	}
}
