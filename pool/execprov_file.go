package pool

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ExecSpec is one provisioner of a pool file: the commands that reserve
// and release its machines (see ExecProvisioner for their protocol), how
// many it may hold, and what every machine it hands out offers, for the
// mapper: arch, params and interfaces, as a pool host has them.
//
//	provisioners:
//	  - name: cloud
//	    reserve: ./reserve.sh       # prints id=... and address=host:port
//	    release: ./release.sh       # gets $LNST_RESERVATION_ID
//	    alive: ./alive.sh           # optional: else the agent must answer
//	    max: 4
//	    timeout: 10m                # one reserve or release command
//	    idle: 1m                    # an unused machine is released after it
//	    tls: {ca: ca.pem, cert: ctl.pem, key: ctl-key.pem}
//	    arch: x86_64
//	    params: {cloud: yes}
//	    interfaces:
//	      - {name: eth0, network: lan1}
//	    allow: [reboot]             # as a host's: destructive recipes
type ExecSpec struct {
	Name string
	// Reserve, Release and Alive are shell commands (sh -c), run in Dir.
	Reserve, Release, Alive string
	// Max is how many machines the provisioner holds at most, at least 1.
	Max int
	// Timeout bounds one reserve, release or alive command (0: the
	// default, DefaultExecTimeout).
	Timeout time.Duration
	// Idle is how long a reserved machine no recipe uses is kept for the
	// next recipe before it is released (0: defaultIdle).
	Idle time.Duration
	// TLS and Insecure say how to reach the agents of its machines, as
	// for a pool host.
	// Insecure is for agents at loopback addresses only, unless
	// InsecureAnyAddress (which implies it) allows plain TCP to any.
	TLS                TLSFiles
	Insecure           bool
	InsecureAnyAddress bool
	Arch               string
	Params             map[string]string
	Ifaces             []Iface
	// Allow is each machine's Host.Allow.
	Allow []string
	// Libvirt, when set, makes this a libvirt provisioner
	// (LibvirtProvisioner): no commands, the machines are guests of a
	// hypervisor; Max is Libvirt.Max.
	Libvirt *LibvirtSpec
	// Dir is the directory the commands run in: the pool file's.
	Dir  string
	Line int // line of the provisioner in the pool file
}

// DefaultExecTimeout bounds a reserve, release or alive command of an
// ExecSpec without a timeout.
const DefaultExecTimeout = 10 * time.Minute

// defaultIdle is how long an unused machine of an ExecSpec without idle
// is kept.
const defaultIdle = time.Minute

// provChecked are the fields checkField checks, in the order it does.
var provChecked = []string{"name", "libvirt", "reserve", "release", "max", "timeout", "idle", "tls", "arch", "params", "allow"}

// provNameRE is what a provisioner may be called: its machines are named
// "<name>#<n>" in mappings and test names.
var provNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// SlotName is the pool host name of a provisioner's n-th machine (from 1):
// "cloud#2".
func SlotName(prov string, n int) string { return fmt.Sprintf("%s#%d", prov, n) }

func (ps *poolParser) provisioners(f field) ([]ExecSpec, error) {
	v := resolve(f.value)
	if isNull(v) {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, ps.errorf(v.Line, "provisioners: want a list of provisioners, not %s", kindName(v))
	}
	var out []ExecSpec
	for i, n := range v.Content {
		p, err := ps.provisioner(i, resolve(n))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (ps *poolParser) provisioner(i int, n *yaml.Node) (ExecSpec, error) {
	p := ExecSpec{Line: n.Line, Dir: ps.dir}
	what := itemName("provisioner", i, n)
	fs, err := ps.mapping(n, what, provFields)
	if err != nil {
		return p, err
	}
	strs := map[string]*string{"name": &p.Name, "reserve": &p.Reserve, "release": &p.Release, "alive": &p.Alive, "arch": &p.Arch}
	for _, name := range []string{"name", "reserve", "release", "alive", "arch"} {
		if f, ok := fs[name]; ok {
			if *strs[name], err = ps.str(f, what); err != nil {
				return p, err
			}
		}
	}
	if f, ok := fs["libvirt"]; ok {
		if p.Libvirt, err = ps.libvirt(f, what); err != nil {
			return p, err
		}
		p.Max = p.Libvirt.Max
	}
	if f, ok := fs["max"]; ok {
		v := resolve(f.value)
		if p.Libvirt != nil {
			return p, ps.errorf(f.key.Line, "%s: max: a libvirt provisioner's max is in its libvirt field (libvirt: {uri: ..., max: N})", what)
		}
		if v.Kind != yaml.ScalarNode || v.Decode(&p.Max) != nil {
			return p, ps.errorf(v.Line, "%s: max: want a number of machines, not %s", what, valueName(v))
		}
	}
	durs := map[string]*time.Duration{"timeout": &p.Timeout, "idle": &p.Idle}
	for _, name := range []string{"timeout", "idle"} {
		f, ok := fs[name]
		if !ok {
			continue
		}
		s, err := ps.str(f, what)
		if err != nil {
			return p, err
		}
		if s == "" {
			continue
		}
		if *durs[name], err = time.ParseDuration(s); err != nil {
			return p, ps.errorf(resolve(f.value).Line, "%s: %s: %q is not a duration such as 90s or 10m", what, name, s)
		}
	}
	if f, ok := fs["insecure"]; ok {
		if p.Insecure, err = ps.boolean(f, what); err != nil {
			return p, err
		}
	}
	if f, ok := fs["insecure_any_address"]; ok {
		if p.InsecureAnyAddress, err = ps.boolean(f, what); err != nil {
			return p, err
		}
	}
	if f, ok := fs["tls"]; ok {
		if p.TLS, err = ps.tls(f, what); err != nil {
			return p, err
		}
	}
	if f, ok := fs["params"]; ok {
		if p.Params, err = ps.params(f, what); err != nil {
			return p, err
		}
	}
	if f, ok := fs["interfaces"]; ok {
		if p.Ifaces, err = ps.ifaces(f, what); err != nil {
			return p, err
		}
	}
	if f, ok := fs["allow"]; ok {
		if p.Allow, err = ps.allow(f, what); err != nil {
			return p, err
		}
	}
	// Check the fields with the lines of their values.
	for _, name := range provChecked {
		if f, ok := fs[name]; ok {
			if err := p.checkField(name); err != nil {
				return p, ps.errorf(resolve(f.value).Line, "%s: %v", what, err)
			}
		}
	}
	return p, nil
}

// checkField checks one field of the provisioner, by its YAML name.
func (p *ExecSpec) checkField(name string) error {
	switch name {
	case "name":
		if p.Name == "" {
			return errors.New("missing name")
		}
		if !provNameRE.MatchString(p.Name) {
			return fmt.Errorf("name %q: want letters, digits, '_', '.' and '-', starting with a letter or digit", p.Name)
		}
	case "libvirt":
		return p.checkLibvirt()
	case "reserve", "release":
		if p.Libvirt != nil {
			return nil // checked with libvirt
		}
		cmd := map[string]string{"reserve": p.Reserve, "release": p.Release}[name]
		if strings.TrimSpace(cmd) == "" {
			return fmt.Errorf("missing %s: the command that %ss a machine", name, name)
		}
		if strings.ContainsRune(cmd, 0) {
			return fmt.Errorf("%s: the command has a NUL byte", name)
		}
	case "max":
		if p.Max < 1 {
			return fmt.Errorf("max %d: want at least 1 machine", p.Max)
		}
	case "timeout", "idle":
		if d := map[string]time.Duration{"timeout": p.Timeout, "idle": p.Idle}[name]; d < 0 {
			return fmt.Errorf("%s %v: must not be negative", name, d)
		}
	case "tls":
		t := p.TLS
		given := t.CA != "" || t.Cert != "" || t.Key != ""
		switch {
		case given && t.CA == "":
			return errors.New("tls: missing ca: the CA that signed the agents' certificates")
		case (t.Cert == "") != (t.Key == ""):
			return errors.New("tls: give cert and key together")
		case given && (p.Insecure || p.InsecureAnyAddress):
			return errors.New("tls and insecure: true contradict each other: choose one")
		}
	case "arch":
		return checkArch(p.Arch)
	case "params":
		return checkHostParams(p.Params)
	case "allow":
		return checkAllow(p.Allow)
	}
	return nil
}

// checkProvisioners checks the provisioners as Parse does; hosts maps
// the pool's host names to their lines. It returns the line at fault.
func (p *Pool) checkProvisioners(hosts map[string]int) (int, error) {
	first := map[string]int{}
	for i := range p.Provisioners {
		e := &p.Provisioners[i]
		what := fmt.Sprintf("provisioner %q", e.Name)
		if e.Name == "" {
			what = fmt.Sprintf("provisioner %d", i+1)
		}
		for _, f := range provChecked {
			if err := e.checkField(f); err != nil {
				return e.Line, fmt.Errorf("%s: %w", what, err)
			}
		}
		if l, dup := first[e.Name]; dup {
			return e.Line, fmt.Errorf("provisioner name %q used twice (first at line %d)", e.Name, l)
		}
		first[e.Name] = e.Line
		if n, l := e.firstClash(hosts); n > 0 {
			return l, fmt.Errorf("host name %q is the name of a machine of provisioner %q (line %d): rename one", SlotName(e.Name, n), e.Name, e.Line)
		}
		// Interfaces as a host's: a template host with the provisioner's.
		h := e.Template(1)
		if line, err := h.checkIfaces(what); err != nil {
			return line, err
		}
	}
	return 0, nil
}

// firstClash returns the smallest n from 1 to e.Max for which a host of
// hosts (names to lines) is named SlotName(e.Name, n), and that host's
// line; 0 when there is none. It looks at each host once, so a large max
// costs nothing.
func (e *ExecSpec) firstClash(hosts map[string]int) (n, line int) {
	for name, l := range hosts {
		prov, num, ok := strings.Cut(name, "#")
		if !ok || prov != e.Name {
			continue
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 1 || i > e.Max || SlotName(e.Name, i) != name {
			continue
		}
		if n == 0 || i < n {
			n, line = i, l
		}
	}
	return n, line
}

// Template is the pool host of the provisioner's n-th machine, for the
// mapper: named SlotName(e.Name, n), with no agent until a machine is
// reserved for it.
func (e *ExecSpec) Template(n int) Host {
	return Host{Name: SlotName(e.Name, n), TLS: e.TLS, Insecure: e.Insecure, InsecureAnyAddress: e.InsecureAnyAddress, Arch: e.Arch, Params: e.Params, Ifaces: e.Ifaces, Allow: e.Allow, Line: e.Line}
}
