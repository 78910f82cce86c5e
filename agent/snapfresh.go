package agent

import (
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// A clean check snapshots every host of a lab instance as soon as it is
// built (SnapshotHosts with fresh set), and ~85% of a namespace host's
// snapshot is reading its ~500 sysctl files one by one (~6 µs of kernel
// time each: a 200-host lab spent over a second of CPU there, more than
// building it). Outside the devices' directories (net.ipv4.conf.eth0...)
// a namespace's sysctls are the same in every namespace made at the same
// time: the kernel sets them when it makes the namespace, to its defaults
// or to the values of the namespace it is made from (the agent's: IPv4's
// conf.all and conf.default, TCP's buffer sizes and congestion control,
// as net.core.devconf_inherit_init_net says), and a few show values the
// whole machine shares. The lab's build touches none of them for good (it
// puts accept_dad back, labdad.go). So for hosts just built, the first
// made before all others and the last after all others, the agent reads
// those files of the first and the last; if they read the same, nothing
// the others could have taken from changed between (short of a change
// put back meanwhile), and the others' snapshots take those lines from
// the first instead of reading them. So do the nftables ruleset, MPTCP
// endpoints and limits, xfrm states and policies and L2TP tunnels
// (snapExtra): a new namespace has none but the kernel's defaults, and
// the first request of nftables in a new namespace cost ~3 ms. The
// devices' directories are listed as the first host's were (their files
// come from one kernel table), not read. Everything else (links,
// addresses, routes, the devices' own sysctls...) is read from every
// host. If the two differ, or either could not be read whole, every host
// is read.

// snapSysTree records the namespace-wide part of a host's sysctls as read:
// each directory's entries in order, and all their lines in order. It
// also records, by devs directory, the entries of its device directories
// when they are all alike (every device's conf has the same files: the
// kernel makes them from one table), nil when they are not.
type snapSysTree struct {
	dirs    map[string]*snapSysDir
	lines   []string
	devList map[string][]snapSysEntry
	// extra are the host's nftables, MPTCP, xfrm, L2TP and Open vSwitch
	// lines (snapExtra): namespace-wide too, and a new namespace has no
	// ruleset, endpoints, states, policies or tunnels; nil if not read.
	extra []string
}

// extra writes snapExtra's lines, from the template if there is one.
func (w *snapWriter) extra() {
	if w.sysTmpl != nil && w.sysTmpl.extra != nil {
		w.lines = append(w.lines, w.sysTmpl.extra...)
		return
	}
	n := len(w.lines)
	w.snapExtra()
	if w.sysOut != nil {
		w.sysOut.extra = slices.Clone(w.lines[n:])
	}
}

func newSnapSysTree() *snapSysTree {
	return &snapSysTree{dirs: map[string]*snapSysDir{}, devList: map[string][]snapSysEntry{}}
}

// noteDevDir records the entries of device directory dir.
func (t *snapSysTree) noteDevDir(dir string, ents []snapSysEntry) {
	parent := path.Dir(dir)
	names := make([]snapSysEntry, len(ents))
	for i, e := range ents {
		names[i] = snapSysEntry{name: e.name, dir: e.dir}
	}
	old, seen := t.devList[parent]
	switch {
	case !seen:
		t.devList[parent] = names
	case old != nil && !slices.EqualFunc(old, names, func(a, b snapSysEntry) bool { return a.name == b.name && a.dir == b.dir }):
		t.devList[parent] = nil
	}
}

// snapListDir lists sysctl directory dir, sorted by name, and opens it
// for reading its files (dirfd; -1 if it has none); done closes it. With
// a template, a devs directory is listed from the host's links (it holds
// all, default and a directory per device), and a device directory as
// the template host's devices' directories were, with no directory read.
// ents is nil if dir cannot be read.
func snapListDir(w *snapWriter, dir string, devDir bool) (ents []snapSysEntry, dirfd int, done func()) {
	nothing := func() {}
	if t := w.sysTmpl; t != nil {
		if devDir {
			if list := t.devList[path.Dir(dir)]; list != nil {
				fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return nil, -1, nothing
				}
				return list, fd, func() { unix.Close(fd) }
			}
		} else if d := t.dirs[dir]; d != nil && d.devs && !slices.ContainsFunc(d.entries, func(e snapSysEntry) bool { return !e.dir }) {
			names := map[string]bool{}
			for _, e := range d.entries {
				if e.name == "all" || e.name == "default" {
					names[e.name] = true
				}
			}
			for _, n := range w.names {
				names[n] = true
			}
			for _, n := range slices.Sorted(maps.Keys(names)) {
				ents = append(ents, snapSysEntry{name: n, dir: true})
			}
			return ents, -1, nothing
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, -1, nothing
	}
	des, err := d.ReadDir(-1)
	if err != nil {
		d.Close()
		return nil, -1, nothing
	}
	slices.SortFunc(des, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	ents = make([]snapSysEntry, len(des))
	for i, e := range des {
		ents[i] = snapSysEntry{name: e.Name(), dir: e.IsDir()}
	}
	return ents, int(d.Fd()), func() { d.Close() }
}

// snapSysDir is one directory of a snapSysTree. devs marks a directory
// holding a directory per device (ipv4/conf, ipv6/neigh...): it is listed
// on every host, and only its all and default belong to the tree.
type snapSysDir struct {
	devs    bool
	entries []snapSysEntry
}

// snapSysEntry is a file, with its lines, or a subdirectory.
type snapSysEntry struct {
	name  string
	dir   bool
	lines []string
}

// snapDevDirs reports whether a directory with entries ents holds a
// directory per device: one of its subdirectories is named as one of the
// host's links (every namespace has lo).
func snapDevDirs(w *snapWriter, ents []snapSysEntry) bool {
	for _, e := range ents {
		if !e.dir {
			continue
		}
		for _, n := range w.names {
			if n == e.name {
				return true
			}
		}
	}
	return false
}

// freshTemplate snapshots hosts[0] and the last host, recording their
// namespace-wide sysctls, with one (which writes the reply's entry i and
// reports whether it is whole). If both are whole and those sysctls are
// the same, it returns the first's as the template for the others;
// otherwise nil. rest are the indexes of the hosts still to snapshot.
func (s *Server) freshTemplate(hosts []*host, one func(i int, tmpl, out *snapSysTree) bool) (tmpl *snapSysTree, rest []int) {
	last := len(hosts) - 1
	trees := [2]*snapSysTree{newSnapSysTree(), newSnapSysTree()}
	var whole [2]bool
	var wg sync.WaitGroup
	for k, i := range []int{0, last} {
		wg.Go(func() { whole[k] = one(i, nil, trees[k]) })
	}
	wg.Wait()
	for i := 1; i < last; i++ {
		rest = append(rest, i)
	}
	if whole[0] && whole[1] && slices.Equal(trees[0].lines, trees[1].lines) && slices.Equal(trees[0].extra, trees[1].extra) {
		return trees[0], rest
	}
	s.log.Debug("fresh hosts' namespace-wide sysctls differ: reading every host's", "first", hosts[0].name, "last", hosts[last].name)
	return nil, rest
}
