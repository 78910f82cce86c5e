package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// undo is one journal entry: what to do to take a change back. It is plain
// data, so that it can be written down and replayed by another process.
type undo struct {
	Seq   uint64
	Group string
	Host  string `json:",omitempty"`
	// Op is one of the op* constants.
	Op string
	// Link is the device the entry is about.
	Link string `json:",omitempty"`
	// Kind and Peer recreate a deleted device.
	Kind string `json:",omitempty"`
	Peer string `json:",omitempty"`
	// Up, MTU and Master are a device's previous settings; a nil pointer
	// leaves the setting alone.
	Up     *bool   `json:",omitempty"`
	MTU    *int    `json:",omitempty"`
	Master *string `json:",omitempty"`
	// CIDR is the address to add or remove; Addr, when set, is how a
	// removed address was (scope, broadcast, label, flags), to add it back
	// as it was.
	CIDR string     `json:",omitempty"`
	Addr *addrAttrs `json:",omitempty"`
	// ValueKind, Key and Value are a sysctl or sysfs value to write back
	// (with opDeleteLink: after the device is gone; see netwideValue).
	ValueKind string `json:",omitempty"`
	Key       string `json:",omitempty"`
	Value     string `json:",omitempty"`
	// Job is a job to kill and reap.
	Job int64 `json:",omitempty"`
	// Network is a lab network to remove.
	Network string `json:",omitempty"`
	// Route is a route to add or remove.
	Route route `json:",omitzero"`
	// HWAddr is a device's previous hardware address.
	HWAddr []byte
	// Features are a device's previous ethtool features.
	Features map[string]bool
	// Params are a device's previous ring sizes (opSetRing), coalescing
	// settings (opSetCoalesce) or queue counts (opSetChannels), by
	// ethtool's names.
	Params map[string]uint32 `json:",omitempty"`
	// Path is a file, symlink or directory to remove; with Backup, the
	// file or symlink the agent saved there (see files.go) is put back,
	// only if it is still BackupID (its device, inode and owner when it
	// was saved). Entries journaled before BackupID have none: their
	// backup's directory is checked, not the backup itself.
	Path     string    `json:",omitempty"`
	Backup   string    `json:",omitempty"`
	BackupID *backupID `json:",omitempty"`
	// Made is what the change made at Path; the undo removes or
	// replaces only that (see undopath.go).
	Made *madeID `json:",omitempty"`
	// Neigh is a neighbour entry to add or remove on device Link.
	Neigh *neighEntry `json:",omitempty"`
	// Rule is a policy routing rule to add or remove.
	Rule *ruleEntry `json:",omitempty"`
	// Netns is the host to move device Link back to (from Host); Rename
	// is the name to give device Link back.
	Netns  string `json:",omitempty"`
	Rename string `json:",omitempty"`
	// L3mdev, on the undo of a VRF's creation, are the rule families
	// (AF_INET...) that had no l3mdev rule before: once no VRF is left,
	// their l3mdev rules go too (see vrf.go).
	L3mdev []int `json:",omitempty"`
	// Argv is the command an opRunCommand entry runs on Host (no shell),
	// and Timeout its bound (0: defaultUndoTimeout); see undocmd.go.
	// omitzero, not omitempty: an empty list must decode as it was.
	Argv    []string      `json:",omitzero"`
	Timeout time.Duration `json:",omitzero"`
	// Tc are the traffic control objects of an opTc* undo on device
	// Link (see tc.go).
	Tc []tcObject `json:",omitempty"`
	// TxQLen is device Link's transmit queue length to set back after a
	// traffic control undo: the kernel sets a length of 0 to 1000 when a
	// qdisc is attached.
	TxQLen *int `json:",omitempty"`
	// Nic is what an opSetRSS, opSetFlowHash or opDelNtuple entry sets
	// back on device Link (see nic_rss.go).
	Nic *nicUndo `json:",omitempty"`
	// Nft is the nftables table, chain or rules an opNft* undo deletes
	// (see nft.go); Mptcp the endpoint or limits of an opMptcp* undo
	// (mptcp.go).
	Nft   *nftUndo   `json:",omitempty"`
	Mptcp *mptcpUndo `json:",omitempty"`
	// Spec is the object an xfrm, MACsec or L2TP entry removes, as the
	// JSON of its devices type (keys left out); see xfrm.go, l2tp.go.
	Spec json.RawMessage `json:",omitempty"`
}

// The operations an undo entry can do.
const (
	opDeleteLink     = "delete-link"
	opCreateLink     = "create-link"
	opSetLink        = "set-link"
	opAddAddr        = "add-addr"
	opDelAddr        = "del-addr"
	opWriteValue     = "write-value"
	opStopJob        = "stop-job"
	opDestroyHost    = "destroy-host"
	opDestroyNetwork = "destroy-network"
	opAddRoute       = "add-route"
	opDelRoute       = "del-route"
	opSetFeatures    = "set-features"
	opSetRing        = "set-ring"
	opSetCoalesce    = "set-coalesce"
	opRemovePath     = "remove-path"
	opAddNeigh       = "add-neigh"
	opDelNeigh       = "del-neigh"
	opAddRule        = "add-rule"
	opDelRule        = "del-rule"
	opMoveLink       = "move-link"
	opRenameLink     = "rename-link"
	// opStopTeamd stops the teamd that made team Link and deletes Link.
	opStopTeamd = "stop-teamd"
	// opRunCommand runs Argv on Host: the undo a recipe gave a job as a
	// command (lnsttest.Undo).
	opRunCommand = "run-command"
	// opStopCapture stops packet capture Job (its id) of Host.
	opStopCapture = "stop-capture"
	// opSetChannels sets back a device's queue counts (Params).
	opSetChannels = "set-channels"
	// opSetPause and opSetLinkModes set back a device's pause frame
	// settings or speed, duplex and autoneg (Params).
	opSetPause     = "set-pause"
	opSetLinkModes = "set-link-modes"
	// opSetRSS sets back a device's RSS, opSetFlowHash a flow type's hash
	// fields, opDelNtuple deletes an ntuple filter (Nic).
	opSetRSS      = "set-rss"
	opSetFlowHash = "set-flow-hash"
	opDelNtuple   = "del-ntuple"
	// opSetNumVfs writes PF Link's old VF count Value back; opSetVf
	// sets back a VF's settings (Nic.VF); opSetEswitch writes back the
	// eswitch mode Value of devlink device Key (see nic_sriov.go).
	opSetNumVfs  = "set-num-vfs"
	opSetVf      = "set-vf"
	opSetEswitch = "set-eswitch"
	// opIrqAffinity writes back interrupt Key's CPU list Value
	// (/proc/irq/Key/smp_affinity_list); see nic_irq.go.
	opIrqAffinity = "irq-affinity"
)

// hostLabel names a host in messages: "" is the agent's own machine.
func hostLabel(name string) string {
	if name == "" {
		return "the agent's own host"
	}
	return fmt.Sprintf("host %q", name)
}

func (u undo) String() string {
	switch u.Op {
	case opDeleteLink:
		return fmt.Sprintf("delete link %s on %s", u.Link, hostLabel(u.Host))
	case opCreateLink:
		return fmt.Sprintf("recreate %s link %s on %s", u.Kind, u.Link, hostLabel(u.Host))
	case opSetLink:
		return fmt.Sprintf("restore settings of link %s on %s", u.Link, hostLabel(u.Host))
	case opAddAddr:
		return fmt.Sprintf("add address %s back to %s on %s", u.CIDR, u.Link, hostLabel(u.Host))
	case opDelAddr:
		return fmt.Sprintf("remove address %s from %s on %s", u.CIDR, u.Link, hostLabel(u.Host))
	case opWriteValue:
		return fmt.Sprintf("write %s %s = %q back on %s", u.ValueKind, u.Key, u.Value, hostLabel(u.Host))
	case opStopJob:
		return fmt.Sprintf("stop job %d on %s", u.Job, hostLabel(u.Host))
	case opDestroyHost:
		return fmt.Sprintf("destroy host %q", u.Host)
	case opDestroyNetwork:
		return fmt.Sprintf("destroy network %q", u.Network)
	case opAddRoute:
		return fmt.Sprintf("add route %s back on %s", u.Route, hostLabel(u.Host))
	case opDelRoute:
		return fmt.Sprintf("remove route %s on %s", u.Route, hostLabel(u.Host))
	case opSetFeatures:
		return fmt.Sprintf("restore features of %s on %s", u.Link, hostLabel(u.Host))
	case opSetRing:
		return fmt.Sprintf("restore ring sizes of %s on %s", u.Link, hostLabel(u.Host))
	case opSetCoalesce:
		return fmt.Sprintf("restore coalescing of %s on %s", u.Link, hostLabel(u.Host))
	case opSetChannels:
		return fmt.Sprintf("restore channels of %s on %s", u.Link, hostLabel(u.Host))
	case opSetPause:
		return fmt.Sprintf("restore pause settings of %s on %s", u.Link, hostLabel(u.Host))
	case opSetLinkModes:
		return fmt.Sprintf("restore link modes of %s on %s", u.Link, hostLabel(u.Host))
	case opSetRSS:
		return fmt.Sprintf("restore RSS of %s on %s", u.Link, hostLabel(u.Host))
	case opSetFlowHash:
		return fmt.Sprintf("restore rx-flow-hash %s of %s on %s", u.Nic.flow(), u.Link, hostLabel(u.Host))
	case opDelNtuple:
		return fmt.Sprintf("delete ntuple filter %d of %s on %s", u.Nic.loc(), u.Link, hostLabel(u.Host))
	case opSetNumVfs:
		return fmt.Sprintf("set %s VFs of %s back on %s", u.Value, u.Link, hostLabel(u.Host))
	case opSetVf:
		return fmt.Sprintf("restore a VF of %s on %s", u.Link, hostLabel(u.Host))
	case opSetEswitch:
		return fmt.Sprintf("set eswitch mode of %s back to %s on %s", u.Key, u.Value, hostLabel(u.Host))
	case opIrqAffinity:
		return fmt.Sprintf("write CPU list %q back to interrupt %s", u.Value, u.Key)
	case opAddNeigh:
		return fmt.Sprintf("add neighbour %s back on %s on %s", u.Neigh, u.Link, hostLabel(u.Host))
	case opDelNeigh:
		return fmt.Sprintf("remove neighbour %s on %s on %s", u.Neigh, u.Link, hostLabel(u.Host))
	case opNftDelTable, opNftDelChain, opNftDelRules:
		return fmt.Sprintf("delete nft %s on %s", u.Nft, hostLabel(u.Host))
	case opMptcpDelEndpoint:
		return fmt.Sprintf("delete mptcp %s on %s", u.Mptcp, hostLabel(u.Host))
	case opMptcpSetLimits:
		return fmt.Sprintf("set mptcp %s back on %s", u.Mptcp, hostLabel(u.Host))
	case opAddRule:
		return fmt.Sprintf("add rule %s back on %s", u.Rule, hostLabel(u.Host))
	case opDelRule:
		return fmt.Sprintf("remove rule %s on %s", u.Rule, hostLabel(u.Host))
	case opMoveLink:
		return fmt.Sprintf("move link %s from %s back to %s", u.Link, hostLabel(u.Host), hostLabel(u.Netns))
	case opRenameLink:
		return fmt.Sprintf("rename link %s back to %s on %s", u.Link, u.Rename, hostLabel(u.Host))
	case opStopCapture:
		return fmt.Sprintf("stop capture %d on %s", u.Job, hostLabel(u.Host))
	case opStopTeamd:
		return fmt.Sprintf("stop teamd of team %s and delete it on %s", u.Link, hostLabel(u.Host))
	case opRunCommand:
		return fmt.Sprintf("run undo command %q on %s", commandLine(u.Argv), hostLabel(u.Host))
	case opTcDelQdisc, opTcPutQdisc, opTcDelClass, opTcPutClass, opTcDelFilter, opTcPutFilter:
		return tcUndoString(u)
	case opDelXfrmState, opDelXfrmPolicy, opDelL2tpTunnel, opDelL2tpSession:
		return issue18UndoString(u)
	case opRemovePath:
		if u.Backup != "" {
			return fmt.Sprintf("put %s back from backup %s on %s", u.Path, u.Backup, hostLabel(u.Host))
		}
		return fmt.Sprintf("remove %s on %s", u.Path, hostLabel(u.Host))
	}
	return "unknown undo " + u.Op
}

// journal holds the undo entries of every group, in the order the changes
// were made. With a file, entries that outlive the agent process (see
// durable) are also written to disk, so that a crashed agent's successor
// can take them back.
type journal struct {
	mu      sync.Mutex
	seq     uint64
	entries []undo
	// unsorted says entries may not be in Seq order: a reserved entry
	// was committed after a later one (take sorts them again).
	unsorted bool
	// file is the on-disk journal; nil keeps the journal in memory only.
	file *journalFile
}

// durable reports whether u means something to the next agent process:
// namespace hosts, lab networks and jobs end with the process that made
// them, and every change inside a namespace host with it.
func durable(u undo) bool {
	return u.Host == "" && u.Op != opStopJob && u.Op != opStopCapture && u.Op != opDestroyNetwork && u.Op != opDestroyHost
}

// add records u and returns its sequence number. The entry is kept in
// memory even when writing it to disk fails; the error says it would not
// survive a crash.
func (j *journal) add(u undo) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	u.Seq = j.seq
	j.entries = append(j.entries, u)
	return u.Seq, j.write(u)
}

func (j *journal) write(u undo) error {
	if j.file == nil || !durable(u) {
		return nil
	}
	return j.file.add(u)
}

// writesAhead reports whether u would go to disk: only then is it worth
// journaling it ahead of its change.
func (j *journal) writesAhead(u undo) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.file != nil && durable(u)
}

// reserve numbers u and writes it to disk before the change it takes back
// is made, but does not yet let take have it: commit does, once the change
// is made, and abandon drops it when the change failed. On error nothing
// is journaled.
func (j *journal) reserve(u undo) (undo, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	u.Seq = j.seq
	return u, j.write(u)
}

// amend writes u, a reserved entry not yet committed, to disk again with
// what it now knows (see recordMade): the last add record of a sequence
// number is the one replayed.
func (j *journal) amend(u undo) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.file == nil || !durable(u) {
		return nil
	}
	if _, ok := j.file.pending[u.Seq]; !ok {
		return nil
	}
	return j.file.add(u)
}

// commit makes a reserved entry one that take returns.
func (j *journal) commit(u undo) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if n := len(j.entries); n > 0 && j.entries[n-1].Seq > u.Seq {
		j.unsorted = true
	}
	j.entries = append(j.entries, u)
}

// abandon drops a reserved entry whose change was not made.
func (j *journal) abandon(u undo) error { return j.done(u.Seq) }

// done marks on disk that the entry seq was taken back (or tried), so that
// it is not taken back again after a crash. With nothing left, the file is
// compacted.
func (j *journal) done(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.file == nil {
		return nil
	}
	return j.file.done(seq)
}

// doneMany marks on disk, as done does, every entry of seqs, in one
// write and one fdatasync.
func (j *journal) doneMany(seqs []uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.file == nil || len(seqs) == 0 {
		return nil
	}
	return j.file.doneMany(seqs)
}

// close closes the on-disk journal; the journal goes on in memory.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.file == nil {
		return nil
	}
	err := j.file.close()
	j.file = nil
	return err
}

// take removes and returns the entries of group (of every group with all)
// with Seq >= since, newest first. They stay on disk until done.
func (j *journal) take(group string, since uint64, all bool) []undo {
	j.mu.Lock()
	defer j.mu.Unlock()
	match := func(u *undo) bool { return (all || u.Group == group) && u.Seq >= since }
	if j.unsorted {
		slices.SortStableFunc(j.entries, func(a, b undo) int { return cmp.Compare(a.Seq, b.Seq) })
		j.unsorted = false
	}
	// In Seq order, the entries from since on are a tail: a test's
	// cleanup of one change (Restore since its seq) looks at the entries
	// after it, not at all of them.
	lo := sort.Search(len(j.entries), func(i int) bool { return j.entries[i].Seq >= since })
	n := 0
	for i := lo; i < len(j.entries); i++ {
		if match(&j.entries[i]) {
			n++
		}
	}
	// Sized once: an undo is some 460 bytes, and a Restore of 10,000
	// routes grown by append allocated 4 times what it keeps.
	// Filled from the end: entries are in Seq order, so taken is newest
	// first.
	taken := make([]undo, n)
	kept := lo
	for i := lo; i < len(j.entries); i++ {
		if u := &j.entries[i]; match(u) {
			n--
			taken[n] = *u
		} else {
			if kept != i {
				j.entries[kept] = *u
			}
			kept++
		}
	}
	clear(j.entries[kept:])
	j.entries = j.entries[:kept]
	return taken
}

// errNothingToUndo marks an undo that found nothing to do: its object is
// already gone (a device deleted by hand, and its addresses, routes and
// per-device sysctls with it) or already as the undo would leave it.
var errNothingToUndo = errors.New("nothing to undo")

// nothingToUndo returns an error that wraps errNothingToUndo.
func nothingToUndo(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errNothingToUndo)
}
