package kernelpkg

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// wantModules are the modules the base image carries, with their
// dependencies. Names the kernel has built in are skipped.
var wantModules = []string{
	"virtio", "virtio_ring", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
	"virtio_net", "net_failover", "failover", "virtio_console", "virtio_blk", "virtio_balloon",
	"bonding", "8021q", "dummy", "vrf",
	"team", "team_mode_activebackup", "team_mode_roundrobin", "team_mode_loadbalance",
	"team_mode_broadcast", "team_mode_random",
	"gre", "ip_gre", "ip6_gre", "ipip", "sit", "ip6_tunnel", "ip_vti", "ip6_vti",
	"geneve", "vxlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "wireguard", "veth",
	"bridge", "tun", "sch_netem", "sch_tbf", "sch_htb", "sch_prio", "sch_fq_codel",
	"sch_fq", "sch_ingress", "cls_u32", "cls_flower", "cls_matchall",
	"act_gact", "act_mirred", "act_police", "act_skbedit", "ifb",
	"macsec", "esp4", "esp6", "xfrm_user", "xfrm_interface", "openvswitch",
	"af_packet", "ipv6",
	// IPsec (issue 18): AH, IPComp, tunnel mode and the crypto the
	// recipes use (AES-CBC with HMAC-SHA256, AES-GCM, deflate); names a
	// kernel lacks are only warned about.
	"ah4", "ah6", "ipcomp", "ipcomp6", "xfrm_ipcomp", "xfrm4_tunnel", "xfrm6_tunnel",
	"tunnel4", "tunnel6", "authenc", "authencesn", "echainiv", "seqiv",
	"cbc", "ctr", "gcm", "ghash_generic", "aes_generic", "aesni_intel", "hmac",
	"sha256_generic", "sha512_generic", "deflate", "crypto_null",
	// cryptomgr instantiates templates (authenc(hmac(sha256),cbc(aes)));
	// the IV generators take their randomness from drbg.
	"cryptomgr", "drbg", "jitterentropy_rng", "ghash_clmulni_intel", "aead", "geniv",
	// L2TP: tunnels and sessions over IP and UDP, Ethernet pseudowires.
	"l2tp_core", "l2tp_netlink", "l2tp_eth", "l2tp_ip", "l2tp_ip6",
	// nftables (NftablesRuleScale).
	"nfnetlink", "nf_tables",
	// SCTP streams (perf's sctp_stream, TestPerfSCTP).
	"sctp",
}

// WantModules returns the names of the modules the base image carries
// (before their dependencies are added), in order. The image cache key
// hashes them, so that a changed list builds a new image.
func WantModules() []string { return append([]string(nil), wantModules...) }

// modName normalises a module name: '-' and '_' are interchangeable.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// modInfo is what the image needs from one module's .modinfo section.
type modInfo struct {
	Path    string   // relative to /lib/modules/<release>, e.g. kernel/net/x.ko
	Depends []string // depends=, normalised
	SoftPre []string // softdep= "pre:" names, normalised
	Aliases []string // alias= patterns
}

// parseModinfo reads the .modinfo section of the module file at path.
func parseModinfo(path string) (modInfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return modInfo{}, fmt.Errorf("read module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return modInfo{}, fmt.Errorf("module %s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return modInfo{}, fmt.Errorf("read .modinfo of %s: %w", path, err)
	}
	return parseModinfoData(data), nil
}

// parseModinfoData parses NUL-separated key=value pairs.
func parseModinfoData(data []byte) modInfo {
	var mi modInfo
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					mi.Depends = append(mi.Depends, modName(d))
				}
			}
		case "alias":
			mi.Aliases = append(mi.Aliases, v)
		case "softdep":
			mi.SoftPre = append(mi.SoftPre, parseSoftdepPre(v)...)
		}
	}
	return mi
}

// parseSoftdepPre returns the names after "pre:" up to "post:".
func parseSoftdepPre(v string) []string {
	var out []string
	pre := false
	for _, w := range strings.Fields(v) {
		switch w {
		case "pre:":
			pre = true
		case "post:":
			pre = false
		default:
			if pre {
				out = append(out, modName(w))
			}
		}
	}
	return out
}

// moduleTree is the modules of one kernel: by name, plus its built-ins.
type moduleTree struct {
	Dir     string             // /lib/modules/<release> or its copy
	Mods    map[string]modInfo // every .ko under Dir, by normalised name
	Builtin map[string]bool    // normalised names from modules.builtin
	Skipped []string           // compressed modules this builder cannot read
}

// scanModules indexes the .ko files under dir and reads modules.builtin.
// The .modinfo sections are read later, for the modules selected only.
func scanModules(dir string) (*moduleTree, error) {
	mt := &moduleTree{Dir: dir, Mods: map[string]modInfo{}, Builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		rel, _ := filepath.Rel(dir, p)
		switch {
		case strings.HasSuffix(name, ".ko"):
			mt.Mods[modName(strings.TrimSuffix(name, ".ko"))] = modInfo{Path: rel}
		case strings.Contains(name, ".ko."):
			mt.Skipped = append(mt.Skipped, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan modules in %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			mt.Builtin[modName(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
		}
	}
	return mt, nil
}

// modinfoReader returns the modinfo of a module; tests replace it.
type modinfoReader func(rel string) (modInfo, error)

// closure returns the modules named by want and all they depend on
// (depends= and softdep pre:), with their modinfo, and the names of want
// that are neither modules nor built in.
func (mt *moduleTree) closure(want []string, read modinfoReader) (map[string]modInfo, []string, error) {
	sel := map[string]modInfo{}
	var missing []string
	var visit func(name string, wanted bool) error
	visit = func(name string, wanted bool) error {
		if _, ok := sel[name]; ok {
			return nil
		}
		mi, ok := mt.Mods[name]
		if !ok {
			if wanted && !mt.Builtin[name] {
				missing = append(missing, name)
			}
			return nil
		}
		full, err := read(mi.Path)
		if err != nil {
			return err
		}
		full.Path = mi.Path
		// Keep only the soft dependencies that are modules here.
		var pre []string
		for _, s := range full.SoftPre {
			if _, ok := mt.Mods[s]; ok {
				pre = append(pre, s)
			}
		}
		full.SoftPre = pre
		sel[name] = full
		for _, d := range append(append([]string(nil), full.Depends...), full.SoftPre...) {
			if _, ok := mt.Mods[d]; !ok && !mt.Builtin[d] {
				return fmt.Errorf("module %s depends on %s, which is neither a module nor built in", name, d)
			}
			if err := visit(d, false); err != nil {
				return err
			}
		}
		return nil
	}
	for _, w := range want {
		if err := visit(modName(w), true); err != nil {
			return nil, nil, err
		}
	}
	return sel, missing, nil
}

// depLine returns the modules.dep line of name: its path, then the paths
// of its dependencies ordered as depmod does, so loading them from last
// to first (what kmod and busybox modprobe do) loads every module after
// its own dependencies. Soft pre-dependencies are listed as hard ones:
// busybox modprobe does not read modules.softdep.
func depLine(sel map[string]modInfo, name string) string {
	var order []string // load order: dependencies first
	seen := map[string]bool{name: true}
	var visit func(n string)
	visit = func(n string) {
		mi := sel[n]
		for _, d := range append(append([]string(nil), mi.SoftPre...), mi.Depends...) {
			if seen[d] {
				continue
			}
			if _, ok := sel[d]; !ok {
				continue // built in
			}
			seen[d] = true
			visit(d)
			order = append(order, d)
		}
	}
	visit(name)
	var b strings.Builder
	b.WriteString(sel[name].Path + ":")
	for i := len(order) - 1; i >= 0; i-- {
		b.WriteString(" " + sel[order[i]].Path)
	}
	return b.String()
}

// writeDepFiles writes modules.dep and modules.alias for the selected
// modules into dir.
func writeDepFiles(dir string, sel map[string]modInfo) error {
	names := make([]string, 0, len(sel))
	for n := range sel {
		names = append(names, n)
	}
	sort.Strings(names)
	var dep, alias bytes.Buffer
	for _, n := range names {
		fmt.Fprintln(&dep, depLine(sel, n))
		for _, a := range sel[n].Aliases {
			fmt.Fprintf(&alias, "alias %s %s\n", a, n)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), dep.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "modules.alias"), alias.Bytes(), 0o644)
}

// Selection is what a VM lab guest needs of one kernel's modules tree: the
// modules the lab's image carries (virtio, the link kinds, qdiscs) with
// everything they depend on.
type Selection struct {
	dir  string
	mods map[string]modInfo
}

// Select scans the modules tree modDir and selects from it; it warns on
// log of compressed modules it skipped and of wanted modules found nowhere.
func Select(modDir string, log io.Writer) (*Selection, error) {
	if log == nil {
		log = io.Discard
	}
	mt, err := scanModules(modDir)
	if err != nil {
		return nil, err
	}
	if len(mt.Skipped) > 0 {
		fmt.Fprintf(log, "kernel modules: warning: %d compressed modules skipped (only .ko is supported), e.g. %s\n", len(mt.Skipped), mt.Skipped[0])
	}
	mods, err := mt.wanted(modDir, log)
	if err != nil {
		return nil, err
	}
	return &Selection{dir: modDir, mods: mods}, nil
}

// Len is how many modules are selected.
func (s *Selection) Len() int { return len(s.mods) }

// Paths are the selected modules' paths relative to the tree
// ("kernel/drivers/net/dummy.ko"), sorted.
func (s *Selection) Paths() []string {
	out := make([]string, 0, len(s.mods))
	for _, mi := range s.mods {
		out = append(out, mi.Path)
	}
	sort.Strings(out)
	return out
}

// WriteDepFiles writes modules.dep and modules.alias of the selection into
// dir.
func (s *Selection) WriteDepFiles(dir string) error { return writeDepFiles(dir, s.mods) }

// wanted is the closure of wantModules in mt, the tree scanned from
// modDir; it warns on log of the modules found nowhere.
func (mt *moduleTree) wanted(modDir string, log io.Writer) (map[string]modInfo, error) {
	sel, missing, err := mt.closure(wantModules, func(rel string) (modInfo, error) {
		return parseModinfo(filepath.Join(modDir, rel))
	})
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		fmt.Fprintf(log, "kernel modules: warning: neither built in nor in %s: %s\n", modDir, strings.Join(missing, " "))
	}
	return sel, nil
}
