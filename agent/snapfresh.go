package agent

import (
	"os"
	"slices"
	"sync"
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
// the first instead of reading them. Everything else (links, addresses,
// routes, the devices' own sysctls...) is read from every host. If the
// two differ, or either could not be read whole, every host is read.

// snapSysTree records the namespace-wide part of a host's sysctls as read:
// each directory's entries in order, and all their lines in order.
type snapSysTree struct {
	dirs  map[string]*snapSysDir
	lines []string
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
func snapDevDirs(w *snapWriter, ents []os.DirEntry) bool {
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		for _, n := range w.names {
			if n == e.Name() {
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
	trees := [2]*snapSysTree{{dirs: map[string]*snapSysDir{}}, {dirs: map[string]*snapSysDir{}}}
	var whole [2]bool
	var wg sync.WaitGroup
	for k, i := range []int{0, last} {
		wg.Go(func() { whole[k] = one(i, nil, trees[k]) })
	}
	wg.Wait()
	for i := 1; i < last; i++ {
		rest = append(rest, i)
	}
	if whole[0] && whole[1] && slices.Equal(trees[0].lines, trees[1].lines) {
		return trees[0], rest
	}
	s.log.Debug("fresh hosts' namespace-wide sysctls differ: reading every host's", "first", hosts[0].name, "last", hosts[last].name)
	return nil, rest
}
