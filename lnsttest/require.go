package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/archname"
	"github.com/lnst-go/lnst/pool"
	"github.com/lnst-go/lnst/results"
)

// Requirement is one host a recipe needs, made by HostReq.
type Requirement struct {
	host hostReq
}

type hostReq struct {
	name    string
	arch    string
	params  map[string]string
	regexps map[string]bool // params whose value is a regexp
	ifaces  []ifaceReq
	kernel  []string
}

type ifaceReq struct {
	name    string
	net     string
	driver  string
	params  map[string]string
	regexps map[string]bool
	impair  *Impair // impair.go
	// caps are the capabilities required (Capability).
	caps []string
}

// HostOpt is an option of HostReq: Arch, Param, IfaceReq.
type HostOpt interface{ applyHost(*hostReq) }

// IfaceOpt is an option of IfaceReq: Net, Driver, Param.
type IfaceOpt interface{ applyIface(*ifaceReq) }

type hostOptFunc func(*hostReq)

func (f hostOptFunc) applyHost(h *hostReq) { f(h) }

type ifaceOptFunc func(*ifaceReq)

func (f ifaceOptFunc) applyIface(i *ifaceReq) { f(i) }

// Opt is an option usable both as a HostOpt and as an IfaceOpt.
type Opt struct {
	key, value string
	regexp     bool
}

func (o Opt) applyHost(h *hostReq) { setParam(&h.params, &h.regexps, o) }

func (o Opt) applyIface(i *ifaceReq) { setParam(&i.params, &i.regexps, o) }

func setParam(params *map[string]string, regexps *map[string]bool, o Opt) {
	if *params == nil {
		*params, *regexps = map[string]string{}, map[string]bool{}
	}
	(*params)[o.key] = o.value
	(*regexps)[o.key] = o.regexp
}

// HostReq requires a host, called name in the recipe.
func HostReq(name string, opts ...HostOpt) Requirement {
	r := Requirement{host: hostReq{name: name}}
	for _, o := range opts {
		o.applyHost(&r.host)
	}
	return r
}

// IfaceReq requires an interface on the host, called name in the recipe.
// Every interface needs a network label (Net).
func IfaceReq(name string, opts ...IfaceOpt) HostOpt {
	i := ifaceReq{name: name}
	for _, o := range opts {
		o.applyIface(&i)
	}
	return hostOptFunc(func(h *hostReq) { h.ifaces = append(h.ifaces, i) })
}

// Net puts the interface on the network with this label: interfaces with
// one label reach each other.
func Net(label string) IfaceOpt {
	return ifaceOptFunc(func(i *ifaceReq) { i.net = label })
}

// Driver requires the interface's driver ("veth", "ixgbe", ...).
func Driver(name string) IfaceOpt {
	return ifaceOptFunc(func(i *ifaceReq) { i.driver = name })
}

// Arch requires the host's machine architecture, as uname -m prints it
// ("x86_64", "aarch64").
func Arch(arch string) HostOpt {
	return hostOptFunc(func(h *hostReq) { h.arch = arch })
}

// Kernel requires the host's kernel to have these link kinds, qdiscs,
// tc classifiers and actions, tools or protocols.
// Require skips a recipe whose hosts lack one, naming what is missing
// (and fails it under -lnst.strict). The names it knows (a test checks
// this list against the agent's):
//
//	link kinds:  bond, bridge, dummy, geneve, gre, gretap, ifb, ip6gre,
//	             ip6gretap, ip6tnl, ipip, ipvlan, macsec, macvlan, macvtap, sit,
//	             team, tun, veth, vlan, vrf, vti, vti6, vxlan, wireguard,
//	             xfrm
//	qdiscs:      clsact, fq, fq_codel, htb, ingress, netem, prio, tbf
//	classifiers: cls_flower, cls_matchall, cls_u32
//	actions:     act_gact, act_mirred, act_police, act_skbedit
//	userspace:   openvswitch
//	ipsec:       esp4, esp6, ah4, ah6, ipcomp, ipcomp6, rfc4106(gcm(aes))
//	l2tp:        l2tp_eth, l2tp_ip
//	protocols:   sctp
//
// A qdisc may also be named by its module, "sch_netem".
func Kernel(features ...string) HostOpt {
	return hostOptFunc(func(h *hostReq) { h.kernel = append(h.kernel, features...) })
}

// kernelFeature is the name Probe reports feature k by: a qdisc's module
// name "sch_netem" is "netem".
func kernelFeature(k string) string {
	if q, ok := strings.CutPrefix(k, "sch_"); ok {
		return q
	}
	return k
}

// Param requires a host or interface parameter to have a value.
func Param(key, value string) Opt { return Opt{key: key, value: value} }

// ParamRegexp requires a host or interface parameter to match a regular
// expression, as a whole ("^(ixgbe|i40e)$" is implied).
func ParamRegexp(key, re string) Opt { return Opt{key: key, value: re, regexp: true} }

// validate reports requirements that are wrong in themselves, whatever the
// pool: these are bugs in the recipe.
func validate(reqs []Requirement) error {
	if len(reqs) == 0 {
		return errors.New("no host required")
	}
	hosts := map[string]bool{}
	for i, r := range reqs {
		h := r.host
		if h.name == "" {
			return fmt.Errorf("HostReq #%d has no name", i+1)
		}
		if hosts[h.name] {
			return fmt.Errorf("host %q is required twice: host names must be unique", h.name)
		}
		hosts[h.name] = true
		for _, k := range h.kernel {
			if !slices.Contains(agent.KernelFeatures(), kernelFeature(k)) {
				return fmt.Errorf("host %q: Kernel(%q): unknown kernel feature (known: %s)", h.name, k, strings.Join(agent.KernelFeatures(), ", "))
			}
		}
		ifaces := map[string]bool{}
		for _, ifc := range h.ifaces {
			if err := devices.CheckName(ifc.name); err != nil {
				return fmt.Errorf("host %q: IfaceReq: %w", h.name, err)
			}
			if ifaces[ifc.name] {
				return fmt.Errorf("host %q: interface %q is required twice", h.name, ifc.name)
			}
			ifaces[ifc.name] = true
			if ifc.net == "" {
				return fmt.Errorf("host %q: interface %q has no network: give it lnsttest.Net(label)", h.name, ifc.name)
			}
			if ifc.impair != nil {
				if _, err := ifc.impair.check(h.name, ifc.name); err != nil {
					return err
				}
			}
			for _, c := range ifc.caps {
				if _, ok := capabilities[c]; !ok {
					return fmt.Errorf("host %q: interface %q: Capability(%q): unknown capability (known: %s)", h.name, ifc.name, c, capabilityNames())
				}
			}
		}
	}
	return nil
}

// labArch is the architecture of lab hosts, as uname -m prints it.
func labArch() string {
	if m := archname.Machine(runtime.GOARCH); m != "" {
		return m
	}
	return runtime.GOARCH
}

// labUnmet says which requirement the local lab cannot meet, "" if none.
func labUnmet(reqs []Requirement) string {
	for _, r := range reqs {
		h := r.host
		if h.arch != "" && h.arch != labArch() {
			return fmt.Sprintf("host %q needs arch %s; local lab hosts are %s", h.name, h.arch, labArch())
		}
		if k := sortedKeys(h.params); len(k) > 0 {
			return fmt.Sprintf("host %q needs param %s=%q; local lab hosts have no params (use a pool)", h.name, k[0], h.params[k[0]])
		}
		for _, i := range h.ifaces {
			if len(i.caps) > 0 {
				c := i.caps[0]
				return fmt.Sprintf("host %q interface %q needs capability %s; local lab interfaces have none (a pool interface declares it: %s)", h.name, i.name, c, capabilities[c].declare)
			}
			if i.driver != "" && i.driver != "veth" {
				return fmt.Sprintf("host %q interface %q needs driver %s; local lab interfaces are veth", h.name, i.name, i.driver)
			}
			if k := sortedKeys(i.params); len(k) > 0 {
				return fmt.Sprintf("host %q interface %q needs param %s=%q; local lab interfaces have no params (use a pool)", h.name, i.name, k[0], i.params[k[0]])
			}
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func topology(reqs []Requirement) pool.Topology {
	var t pool.Topology
	for _, r := range reqs {
		h := pool.TopoHost{Name: r.host.name}
		for _, i := range r.host.ifaces {
			h.Ifaces = append(h.Ifaces, pool.TopoIface{Name: i.name, Net: i.net, Impair: topoImpair(i)})
		}
		t.Hosts = append(t.Hosts, h)
	}
	return t
}

// Match is the hosts a recipe got for its requirements.
type Match struct {
	hosts map[string]*Host
	desc  string
}

// Host returns the host the recipe called name in its HostReq. It panics
// for a name that was not required: that is a bug in the recipe.
func (m *Match) Host(name string) *Host {
	h, ok := m.hosts[name]
	if !ok {
		panic(fmt.Sprintf("lnsttest: Match.Host(%q): no such host was required (have %s)", name, strings.Join(m.names(), ", ")))
	}
	return h
}

func (m *Match) names() []string {
	var n []string
	for k := range m.hosts {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// String describes the match: which pool host each required host got.
func (m *Match) String() string { return m.desc }

// Lab is the kind of lab the recipe's hosts are in (see Host.Lab). Every
// host of a match is in the same kind but in a mixed lab (-lnst.lab=auto:
// guests for the hosts needing another kernel, namespace hosts for the
// others), which is "vm".
func (m *Match) Lab() string {
	kind := ""
	for _, h := range m.hosts {
		if kind = h.Lab(); kind == "vm" {
			return kind
		}
	}
	return kind
}

// Require maps the requirements onto the pool (or builds them in the local
// lab) and returns the hosts. Requirements that are wrong in themselves
// (a host without a name, two hosts with one name, an interface without a
// network) fail the test; requirements this pool cannot meet skip it with
// the reason, or fail it under -lnst.strict. The hosts are the recipe's
// until it ends; everything it changed on them is restored then.
func Require(t *testing.T, reqs ...Requirement) *Match {
	t.Helper()
	s := current()
	if s == nil {
		t.Fatal("lnsttest.Require: the test binary was not started by lnsttest.Main: add func TestMain(m *testing.M) { lnsttest.Main(m) }")
	}
	if err := validate(reqs); err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	if s.pool != nil {
		return s.matchPool(t, reqs, nil)
	}
	if reason := labUnmet(reqs); reason != "" {
		unmet(t, "lnsttest.Require", reason)
	}
	// An impairment the lab switch's kernel cannot make is made inside
	// the guests under -lnst.lab=vm, where every host is one
	// (impairPool, as on a pool machine); elsewhere the recipe skips.
	impairReason, err := s.impairUnmet(reqs)
	if err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	guestImpair := impairReason != ""
	if guestImpair && cfg.lab != "vm" {
		unmet(t, "lnsttest.Require", impairReason+" (-lnst.lab=vm impairs inside the VM guests instead)")
	}
	lab, vm, err := s.chooseLab(reqs)
	if err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	if !vm {
		if reason, err := s.kernelUnmet(reqs); err != nil {
			t.Fatalf("lnsttest.Require: %v", err)
		} else if reason != "" {
			unmet(t, "lnsttest.Require", reason+" (-lnst.lab=vm or auto runs such recipes in VMs)")
		}
	}
	// The lab is a provisioner whose reservation is a built instance.
	lp := lab.Provisioner()
	topo, nsHosts, err := s.labTopology(reqs, vm)
	if err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	if guestImpair {
		for i := range topo.Hosts {
			for k := range topo.Hosts[i].Ifaces {
				topo.Hosts[i].Ifaces[k].Impair = nil // made in the guest below
			}
		}
	}
	res, err := lp.Reserve(rpcCtx(t), pool.Request{Topology: topo})
	if err == nil && res.Instance.Fresh {
		if err = s.snapInstance(lab, res.Instance); err != nil {
			lp.Release(rpcCtx(t), res)
		}
	}
	if err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	in := res.Instance
	st := s.state(t)
	t.Cleanup(func() {
		st.restore()
		st.finishWatch(t) // sysinfo.go: kernel log, counters, agent logs
		if t.Failed() && vm {
			for _, r := range reqs {
				t.Logf("VM %s (%s), last console lines:\n%s", r.host.name, in.Hosts[r.host.name], in.Console(r.host.name, 30))
				st.keepConsole(r.host.name, in.Console(r.host.name, 500))
			}
		}
		lp.Release(rpcCtx(t), res)
	})
	var hosts []matchHost
	for _, r := range reqs {
		h := &Host{s: s, client: lab.Client(), name: r.host.name, id: in.Hosts[r.host.name], ifaces: map[string]string{}}
		hello, info := lab.Hello(), "lab:"+h.id
		if c, gh := in.GuestClient(r.host.name); c != nil {
			h.client, h.id, hello, info = c, "", gh, "vm:"+in.Hosts[r.host.name]
			h.vm = &vmHost{lab: lab, in: in, name: r.host.name}
			st.use(c)
		}
		for _, i := range r.host.ifaces {
			h.ifaces[i.name] = in.Ifname(r.host.name, i.name)
		}
		s.addHostInfo(info, hello)
		mh := matchHost{h: h, where: info, kernel: hello.GetKernel()}
		if vm && !nsHosts[r.host.name] { // the namespace lab's kernel was checked above
			mh.need = r.host.kernel
			if guestImpair {
				for _, i := range r.host.ifaces {
					if q := topoImpair(i); q != nil {
						mh.need = append(append(slices.Clip(mh.need), q.Kind()), impairKinds...)
					}
				}
			}
		}
		hosts = append(hosts, mh)
	}
	m := st.newMatch(t, hosts)
	if guestImpair {
		for _, r := range reqs {
			for _, i := range r.host.ifaces {
				if q := topoImpair(i); q != nil {
					h := m.Host(r.host.name)
					impairPool(t, h, h.Iface(i.name), q) // impair.go
				}
			}
		}
	}
	return m
}

// matchHost is a host of a Match being made.
type matchHost struct {
	h *Host
	// where names the host's machine: "lab:h1.1", "vm:h1", "m1" (a pool
	// host), kernel is its kernel release.
	where, kernel string
	// need are the kernel features to check it has (Kernel).
	need []string
}

// newMatch makes the Match of hosts and records it as the test's, once
// each host's kernel has the features it needs: a host lacking one skips
// the test (or fails it under -lnst.strict); an agent that cannot tell
// what its kernel has fails it, naming the host and the error.
func (st *testState) newMatch(t testing.TB, hosts []matchHost) *Match {
	t.Helper()
	m := &Match{hosts: map[string]*Host{}}
	var desc []string
	for _, mh := range hosts {
		reason, err := kernelUnmetOn(rpcCtx(t), mh)
		if err != nil {
			t.Fatalf("lnsttest.Require: %v", err)
		}
		if reason != "" {
			unmet(t, "lnsttest.Require", reason)
		}
		m.hosts[mh.h.name] = mh.h
		desc = append(desc, mh.h.name+"="+mh.where)
	}
	sort.Strings(desc)
	m.desc = strings.Join(desc, " ")
	st.mu.Lock()
	st.match = m.desc
	st.mu.Unlock()
	st.event(results.Event{Type: results.EventMatch, Match: m.desc})
	st.logger().Info("hosts ready", "match", m.desc)
	st.captureRun(t, m)
	st.startWatch(t, hosts) // sysinfo.go
	return m
}

// unmet skips t, from call, because requirements cannot be met for
// reason, or fails it under -lnst.strict.
func unmet(t testing.TB, call, reason string) {
	t.Helper()
	if cfg.strict {
		t.Fatalf("%s: requirements cannot be met (-lnst.strict): %s", call, reason)
	}
	t.Skipf("%s: requirements cannot be met: %s", call, reason)
}

// kernelUnmetOn asks the agent of mh which of the kernel features mh
// needs its kernel lacks, and says so ("" if none); an error when the
// agent cannot be asked.
func kernelUnmetOn(ctx context.Context, mh matchHost) (string, error) {
	if len(mh.need) == 0 {
		return "", nil
	}
	p, err := mh.h.client.Probe(ctx, &pb.ProbeRequest{})
	if err != nil {
		return "", fmt.Errorf("host %q (%s): cannot tell whether its kernel has %s: probe: %w", mh.h.name, mh.where, strings.Join(mh.need, ", "), err)
	}
	return kernelReason(p, mh.h.name, mh.where, mh.kernel, mh.need), nil
}

// kernelReason says which of the kernel features host needs the probed
// kernel (release kernel, on where) lacks, "" if none.
func kernelReason(p *pb.ProbeReply, host, where, kernel string, need []string) string {
	var missing []string
	for _, k := range need {
		f := kernelFeature(k)
		if !p.LinkKinds[f] && !p.Qdiscs[f] && !p.Tc[f] && !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("host %q needs kernel support for %s, which the kernel of %s (%s) lacks", host, strings.Join(missing, ", "), where, kernel)
}

// chooseLab picks the local lab for a recipe: the VM lab under
// -lnst.lab=vm, and under -lnst.lab=auto when a host needs kernel kinds
// this machine's kernel lacks; the namespace lab otherwise. vm tells which.
func (s *session) chooseLab(reqs []Requirement) (lab *pool.Lab, vm bool, err error) {
	switch cfg.lab {
	case "vm":
		lab, err = s.vmLabNow()
		return lab, true, err
	case "auto":
		if lab, err = s.labNow(); err != nil {
			return nil, false, err
		}
		reason, err := s.kernelUnmet(reqs)
		if err != nil || reason == "" {
			return lab, false, err
		}
		lab, err = s.vmLabNow()
		return lab, true, err
	}
	lab, err = s.labNow()
	return lab, false, err
}

// ForEachMatch runs f in a subtest for each distinct match of reqs, as LNST
// runs a recipe once per mapping; each subtest is named after its match
// ("h1=m1,h2=m2"). The local lab has one match: the topology itself.
func ForEachMatch(t *testing.T, reqs []Requirement, f func(t *testing.T, m *Match)) {
	t.Helper()
	s := current()
	if s == nil || s.pool == nil {
		t.Run("lab", func(t *testing.T) { f(t, Require(t, reqs...)) })
		return
	}
	if err := validate(reqs); err != nil {
		t.Fatalf("lnsttest.ForEachMatch: %v", err)
	}
	all, err := s.pool.allMatches(poolReqs(reqs))
	if err != nil {
		unmet(t, "lnsttest.ForEachMatch", fmt.Sprintf("pool %s: %v", s.pool.p.Path, err))
	}
	for _, mapping := range all {
		t.Run(mappingName(mapping), func(t *testing.T) {
			f(t, s.matchPool(t, reqs, &mapping))
		})
	}
}

func mappingName(m pool.Mapping) string {
	var parts []string
	for req, hm := range m.Hosts {
		parts = append(parts, req+"="+hm.Pool)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// kernelUnmet says which required kernel feature the lab's kernel lacks,
// "" if none. The lab agent probes its kernel once.
func (s *session) kernelUnmet(reqs []Requirement) (string, error) {
	var need []string
	for _, r := range reqs {
		need = append(need, r.host.kernel...)
	}
	if len(need) == 0 {
		return "", nil
	}
	p, err := s.probe()
	if err != nil {
		return "", err
	}
	for _, r := range reqs {
		if reason := kernelReason(p, r.host.name, "the local lab", s.lab.Hello().Kernel, r.host.kernel); reason != "" {
			return reason, nil
		}
	}
	return "", nil
}

// probe asks the lab agent what its kernel supports, once.
func (s *session) probe() (*pb.ProbeReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probed == nil {
		r, err := s.lab.Client().Probe(context.Background(), &pb.ProbeRequest{})
		if err != nil {
			return nil, fmt.Errorf("probe the lab's kernel: %w", err)
		}
		s.probed = r
	}
	return s.probed, nil
}
