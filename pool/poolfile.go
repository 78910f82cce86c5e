package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/internal/agentconn"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
)

// Pool is a pool file: the machines that run lnst-agent, how to reach
// them, and what they offer.
//
//	hosts:
//	  - name: m1
//	    agent: m1.lab.example:7777
//	    tls: {ca: ca.pem, cert: client.pem, key: client-key.pem}
//	    arch: x86_64
//	    params: {rack: r1}
//	    interfaces:
//	      - {name: enp3s0f0, hwaddr: "52:54:00:00:01:01", network: lan1, driver: ixgbe, speed: 10000}
//	    power: {reset: "ipmitool -I lanplus -H m1-bmc -U lnst -f bmc.pw power reset", timeout: 2m}
//	    console: {file: /var/log/conserver/m1.log}
//	    allow: [reboot, kernel, reset]
//	provisioners:
//	  - name: cloud
//	    reserve: ./reserve.sh
//	    release: ./release.sh
//	    max: 4
//	    insecure: true    # plain TCP: loopback agents only (else insecure_any_address: true)
//	    interfaces:
//	      - {name: eth0, network: lan1}
//
// A pool has hosts, provisioners (ExecSpec), or both.
type Pool struct {
	// Path is the file the pool came from, as given to Load or Parse.
	Path  string
	Hosts []Host
	// Provisioners are the exec provisioners of the pool file: commands
	// that reserve and release machines on demand.
	Provisioners []ExecSpec
}

// Host is one machine of a Pool.
type Host struct {
	Name string // unique in the pool
	// Agent is the agent's address: "unix:///abs/path" or "host:port".
	Agent string
	// TLS holds the files of a TLS connection to the agent, relative paths
	// resolved against the pool file's directory.
	TLS TLSFiles
	// Insecure allows plain TCP to the agent, without TLS, when Agent is
	// a loopback address (127.0.0.0/8, ::1, localhost): anyone who
	// reaches an agent runs commands on its machine.
	Insecure bool
	// InsecureAnyAddress allows plain TCP to an agent at any address
	// (pool file: insecure_any_address: true); it implies Insecure.
	InsecureAnyAddress bool
	Arch               string // as uname -m prints it ("x86_64")
	// Params are free labels a recipe can require (Param, Pattern).
	Params map[string]string
	Ifaces []Iface
	Line   int // line of the host in the pool file
	// Power resets the machine out of band (Host.HardReset); zero if the
	// pool file names no power command.
	Power Power
	// Console is where the controller reads the machine's console; zero
	// if the pool file names none.
	Console Console
	// Allow lists the destructive kinds (DestructiveKinds) recipes may do
	// to the machine: a recipe declaring another (lnsttest.Destructive)
	// skips there, and Reboot, InstallKernel and HardReset skip on it.
	Allow []string
}

// Dial connects to h's agent and returns once it answered, or fails
// within timeout (0 means 10 seconds) or when ctx ends. It uses TLS from
// h.TLS when that names a CA, and plain TCP only as Insecure allows.
// Errors name the agent. A machine of a pool file should be up: a
// refused connection, a wrong CA or name fail at once (DialStarting
// waits for an agent that may be starting).
func (h *Host) Dial(ctx context.Context, timeout time.Duration) (*grpc.ClientConn, error) {
	return h.dial(ctx, timeout, true)
}

// DialStarting is Dial for an agent that may still be starting, as on a
// machine a provisioner just reserved: a refused connection is tried
// again until timeout.
func (h *Host) DialStarting(ctx context.Context, timeout time.Duration) (*grpc.ClientConn, error) {
	return h.dial(ctx, timeout, false)
}

func (h *Host) dial(ctx context.Context, timeout time.Duration, failFast bool) (*grpc.ClientConn, error) {
	opts, err := h.dialOptions()
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", h.Agent, err)
	}
	opts.Timeout = timeout
	opts.FailFast = failFast
	return agentconn.Dial(ctx, h.Agent, opts)
}

// dialOptions are the options to dial h's agent: Insecure as given, and
// TLS from h.TLS when it names a CA.
func (h *Host) dialOptions() (agentconn.DialOptions, error) {
	opts := agentconn.DialOptions{Insecure: h.Insecure || h.InsecureAnyAddress}
	if h.TLS.CA != "" {
		conf, err := agentconn.ClientTLS(h.TLS.CA, h.TLS.Cert, h.TLS.Key)
		if err != nil {
			return agentconn.DialOptions{}, err
		}
		opts.TLS = conf
	}
	return opts, nil
}

// TLSFiles are the PEM files of a TLS connection to an agent: the CA that
// signed the agent's certificate, and this client's certificate and key.
type TLSFiles struct{ CA, Cert, Key string }

// Iface is one interface of a Host. Name or HWAddr identifies it
// on the host.
type Iface struct {
	Name   string
	HWAddr string // canonical form ("52:54:00:00:01:01"), "" if not given
	Net    string // label of the pool network the interface is cabled to, "" if none
	Driver string
	Speed  int // Mbit/s, 0 if unknown
	// SRIOV is how many VFs the interface may have (sriov: N), 0 when
	// it declares none; Switchdev that its eswitch has a switchdev mode.
	// Requirements see them as the interface parameters "sriov" and
	// "switchdev" (lnsttest.Capability); without the field, a param of
	// that name stands.
	SRIOV     int
	Switchdev bool
	Params    map[string]string
	Line      int // line of the interface in the pool file
}

// FileError is a problem in a pool file, at a line (0 if unknown).
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads and checks the pool file at path.
func Load(path string) (*Pool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load pool: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and checks a pool file. name is the file's path: it
// names the file in errors, and relative TLS paths are resolved against its
// directory. Every error is a *FileError naming the line and the field.
func Parse(name string, data []byte) (*Pool, error) {
	ps := &poolParser{file: name, dir: filepath.Dir(name)}
	p, err := ps.parse(data)
	if err != nil {
		return nil, err
	}
	if err := strictDecode(name, data); err != nil {
		return nil, err
	}
	return p, nil
}

// poolSchema is the pool file's schema: its fields, their YAML names and
// their order. The field lists the node walk of poolParser accepts (and
// names in "unknown field" messages) are read from its tags, and
// strictDecode decodes into it, so a field is declared here once.
type poolSchema struct {
	Hosts        []hostSchema `yaml:"hosts"`
	Provisioners []provSchema `yaml:"provisioners"`
}

// hostSchema is a host of poolSchema.
type hostSchema struct {
	Name    string        `yaml:"name"`
	Agent   string        `yaml:"agent"`
	Machine machineSchema `yaml:",inline"`
	Power   powerSchema   `yaml:"power"`
	Console consoleSchema `yaml:"console"`
	Allow   []string      `yaml:"allow"`
}

// provSchema is a provisioner of poolSchema (ExecSpec).
type provSchema struct {
	Name    string        `yaml:"name"`
	Reserve string        `yaml:"reserve"`
	Release string        `yaml:"release"`
	Alive   string        `yaml:"alive"`
	Max     int           `yaml:"max"`
	Timeout string        `yaml:"timeout"`
	Idle    string        `yaml:"idle"`
	Libvirt libvirtSchema `yaml:"libvirt"`
	Machine machineSchema `yaml:",inline"`
	Allow   []string      `yaml:"allow"`
}

// libvirtSchema is the libvirt field of a provisioner (LibvirtSpec).
type libvirtSchema struct {
	URI         string `yaml:"uri"`
	Max         int    `yaml:"max"`
	Memory      int    `yaml:"memory"`
	CPUs        int    `yaml:"cpus"`
	Image       string `yaml:"image"`
	StoragePool string `yaml:"storage_pool"`
	BootTimeout string `yaml:"boot_timeout"`
	Accel       string `yaml:"accel"`
}

// machineSchema is what a host and a provisioner's machines share: how
// to reach the agent and what the machine offers.
type machineSchema struct {
	TLS      tlsSchema         `yaml:"tls"`
	Insecure bool              `yaml:"insecure"`
	AnyAddr  bool              `yaml:"insecure_any_address"`
	Arch     string            `yaml:"arch"`
	Params   map[string]string `yaml:"params"`
	Ifaces   []ifaceSchema     `yaml:"interfaces"`
}

// tlsSchema is the tls field of a host or provisioner.
type tlsSchema struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// ifaceSchema is an interface of a host or provisioner.
type ifaceSchema struct {
	Name   string `yaml:"name"`
	HWAddr string `yaml:"hwaddr"`
	Net    string `yaml:"network"`
	Driver string `yaml:"driver"`
	Speed  int    `yaml:"speed"`
	// SRIOV and Switchdev declare what the NIC can do (see Iface).
	SRIOV     int               `yaml:"sriov"`
	Switchdev bool              `yaml:"switchdev"`
	Params    map[string]string `yaml:"params"`
}

// powerSchema is the power field of a host.
type powerSchema struct {
	Reset   string `yaml:"reset"`
	Timeout string `yaml:"timeout"`
}

// consoleSchema is the console field of a host.
type consoleSchema struct {
	File    string `yaml:"file"`
	Command string `yaml:"command"`
}

// The field names of each mapping of a pool file, in schema order.
var (
	poolFields    = yamlFields[poolSchema]()
	hostFields    = yamlFields[hostSchema]()
	provFields    = yamlFields[provSchema]()
	libvirtFields = yamlFields[libvirtSchema]()
	tlsFields     = yamlFields[tlsSchema]()
	ifaceFields   = yamlFields[ifaceSchema]()
	powerFields   = yamlFields[powerSchema]()
	consoleFields = yamlFields[consoleSchema]()
)

// yamlFields lists the YAML names of the fields of struct T, in order,
// those of an inline struct in its place.
func yamlFields[T any]() []string { return structFields(reflect.TypeFor[T]()) }

func structFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			names = append(names, structFields(f.Type)...)
			continue
		}
		names = append(names, name)
	}
	return names
}

// strictDecode decodes the file with yaml's own strict decoder
// (KnownFields), after the node walk of poolParser has checked it with
// precise messages: the two must agree, and this catches what the walk
// would miss.
func strictDecode(name string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s poolSchema
	if err := dec.Decode(&s); err != nil {
		return yamlError(name, data, err)
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns an error of the yaml package into a *FileError.
func yamlError(name string, data []byte, err error) *FileError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FileError{File: name, Line: line, Msg: "yaml: " + m[2]}
	}
	return &FileError{File: name, Line: badCharLine(data), Msg: "yaml: " + msg}
}

// badCharLine is the line of the first byte YAML does not allow, 0 if none.
func badCharLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size <= 1:
			return line
		case r == '\n':
			line++
		case r == '\t' || r == '\r':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0 && r != 0x85) || r == 0xfffe || r == 0xffff:
			return line
		}
		data = data[size:]
	}
	return 0
}

// poolParser walks the YAML nodes of a pool file.
type poolParser struct {
	file, dir string
}

func (ps *poolParser) errorf(line int, format string, args ...any) *FileError {
	return &FileError{File: ps.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (ps *poolParser) parse(data []byte) (*Pool, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ps.errorf(1, "empty pool file: it needs a list of hosts")
		}
		return nil, yamlError(ps.file, data, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, ps.errorf(more.Line, "a second YAML document: a pool file holds one")
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(ps.file, data, err)
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		return nil, ps.errorf(max(root.Line, 1), "empty pool file: it needs a list of hosts")
	}
	top, err := ps.mapping(root, "pool file", poolFields)
	if err != nil {
		return nil, err
	}
	p := &Pool{Path: ps.file}
	if f, ok := top["provisioners"]; ok {
		if p.Provisioners, err = ps.provisioners(f); err != nil {
			return nil, err
		}
	}
	hosts, ok := top["hosts"]
	if !ok && len(p.Provisioners) == 0 {
		return nil, ps.errorf(root.Line, "no hosts: the pool file needs a list of hosts or provisioners")
	}
	var hv *yaml.Node
	if ok {
		hv = resolve(hosts.value)
		if isNull(hv) && len(p.Provisioners) == 0 {
			return nil, ps.errorf(hosts.key.Line, "no hosts: the list of hosts is empty")
		}
		if !isNull(hv) && hv.Kind != yaml.SequenceNode {
			return nil, ps.errorf(hv.Line, "hosts: want a list of hosts, not %s", kindName(hv))
		}
		if len(hv.Content) == 0 && len(p.Provisioners) == 0 {
			return nil, ps.errorf(hv.Line, "no hosts: the list of hosts is empty")
		}
	} else {
		hv = &yaml.Node{}
	}
	for i, n := range hv.Content {
		h, err := ps.host(i, resolve(n))
		if err != nil {
			return nil, err
		}
		p.Hosts = append(p.Hosts, h)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// field is one key and value of a mapping.
type field struct{ key, value *yaml.Node }

// mapping checks that n is a mapping with only known, distinct scalar keys.
func (ps *poolParser) mapping(n *yaml.Node, what string, known []string) (map[string]field, error) {
	if n.Kind != yaml.MappingNode {
		return nil, ps.errorf(n.Line, "%s: want a mapping, not %s", what, kindName(n))
	}
	fields := map[string]field{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, ps.errorf(k.Line, "%s: a key is %s, want a field name", what, kindName(k))
		}
		if !contains(known, k.Value) {
			return nil, ps.errorf(k.Line, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(known, ", "))
		}
		if f, dup := fields[k.Value]; dup {
			return nil, ps.errorf(k.Line, "%s: field %q given twice (first at line %d)", what, k.Value, f.key.Line)
		}
		fields[k.Value] = field{key: k, value: v}
	}
	return fields, nil
}

// str is the string value of a scalar field, "" for null.
func (ps *poolParser) str(f field, what string) (string, error) {
	v := resolve(f.value)
	if isNull(v) {
		return "", nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", ps.errorf(v.Line, "%s: %s: want a string, not %s", what, f.key.Value, kindName(v))
	}
	return v.Value, nil
}

func (ps *poolParser) params(f field, what string) (map[string]string, error) {
	v := resolve(f.value)
	if isNull(v) {
		return nil, nil
	}
	if v.Kind != yaml.MappingNode {
		return nil, ps.errorf(v.Line, "%s: params: want a mapping of names to values, not %s", what, kindName(v))
	}
	m := map[string]string{}
	lines := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, ps.errorf(k.Line, "%s: params: a param name must be a non-empty string", what)
		}
		if first, dup := lines[k.Value]; dup {
			return nil, ps.errorf(k.Line, "%s: params: %q given twice (first at line %d)", what, k.Value, first)
		}
		if val.Kind != yaml.ScalarNode {
			return nil, ps.errorf(val.Line, "%s: params: %s: want a string, not %s", what, k.Value, kindName(val))
		}
		lines[k.Value] = k.Line
		m[k.Value] = val.Value
		if isNull(val) {
			m[k.Value] = ""
		}
	}
	return m, nil
}

// itemName names the i'th item of a list (a host, a provisioner) in
// messages: by its name when it has one, else by its position.
func itemName(kind string, i int, n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k, v := resolve(n.Content[j]), resolve(n.Content[j+1]); k.Value == "name" && v.Kind == yaml.ScalarNode && !isNull(v) {
				return fmt.Sprintf("%s %q", kind, v.Value)
			}
		}
	}
	return fmt.Sprintf("%s %d", kind, i+1)
}

func (ps *poolParser) host(i int, n *yaml.Node) (Host, error) {
	h := Host{Line: n.Line}
	what := itemName("host", i, n)
	fs, err := ps.mapping(n, what, hostFields)
	if err != nil {
		return h, err
	}
	strs := map[string]*string{"name": &h.Name, "agent": &h.Agent, "arch": &h.Arch}
	for _, name := range []string{"name", "agent", "arch"} {
		if f, ok := fs[name]; ok {
			if *strs[name], err = ps.str(f, what); err != nil {
				return h, err
			}
		}
	}
	if f, ok := fs["insecure"]; ok {
		if h.Insecure, err = ps.boolean(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["insecure_any_address"]; ok {
		if h.InsecureAnyAddress, err = ps.boolean(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["tls"]; ok {
		if h.TLS, err = ps.tls(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["params"]; ok {
		if h.Params, err = ps.params(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["interfaces"]; ok {
		if h.Ifaces, err = ps.ifaces(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["power"]; ok {
		if h.Power, err = ps.power(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["console"]; ok {
		if h.Console, err = ps.console(f, what); err != nil {
			return h, err
		}
	}
	if f, ok := fs["allow"]; ok {
		if h.Allow, err = ps.allow(f, what); err != nil {
			return h, err
		}
	}
	// Check the fields with the lines of their values.
	check := map[string]func() error{
		"name":     func() error { return checkHostName(h.Name) },
		"agent":    func() error { return checkAgent(h.Agent) },
		"tls":      func() error { return checkTLS(h) },
		"insecure": func() error { return checkInsecure(h.Agent, h.Insecure, h.InsecureAnyAddress) },
		"arch":     func() error { return checkArch(h.Arch) },
		"params":   func() error { return checkHostParams(h.Params) },
	}
	for _, name := range []string{"name", "agent", "tls", "insecure", "arch", "params"} {
		f, ok := fs[name]
		if _, tls := fs["tls"]; name == "tls" && !tls {
			f, ok = fs["agent"] // a TCP agent without tls
		}
		if ok {
			if err := check[name](); err != nil {
				return h, ps.errorf(resolve(f.value).Line, "%s: %v", what, err)
			}
		}
	}
	return h, nil
}

func (ps *poolParser) boolean(f field, what string) (bool, error) {
	v := resolve(f.value)
	var b bool
	if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
		return false, ps.errorf(v.Line, "%s: %s: want true or false, not %s", what, f.key.Value, valueName(v))
	}
	return b, nil
}

func (ps *poolParser) tls(f field, what string) (TLSFiles, error) {
	var t TLSFiles
	v := resolve(f.value)
	if isNull(v) {
		return t, nil
	}
	fs, err := ps.mapping(v, what+": tls", tlsFields)
	if err != nil {
		return t, err
	}
	for _, name := range tlsFields {
		dst := map[string]*string{"ca": &t.CA, "cert": &t.Cert, "key": &t.Key}[name]
		if f, ok := fs[name]; ok {
			s, err := ps.str(f, what+": tls")
			if err != nil {
				return t, err
			}
			if s != "" && !filepath.IsAbs(s) {
				s = filepath.Join(ps.dir, s)
			}
			*dst = s
		}
	}
	return t, nil
}

// ifaces parses the interfaces list of a host or provisioner.
func (ps *poolParser) ifaces(f field, what string) ([]Iface, error) {
	v := resolve(f.value)
	if !isNull(v) && v.Kind != yaml.SequenceNode {
		return nil, ps.errorf(v.Line, "%s: interfaces: want a list, not %s", what, kindName(v))
	}
	var out []Iface
	for j, in := range v.Content {
		ifc, err := ps.iface(j, resolve(in), what)
		if err != nil {
			return nil, err
		}
		out = append(out, ifc)
	}
	return out, nil
}

func (ps *poolParser) iface(j int, n *yaml.Node, host string) (Iface, error) {
	ifc := Iface{Line: n.Line}
	what := fmt.Sprintf("%s: interface %d", host, j+1)
	fs, err := ps.mapping(n, what, ifaceFields)
	if err != nil {
		return ifc, err
	}
	if f, ok := fs["name"]; ok {
		if ifc.Name, err = ps.str(f, what); err != nil {
			return ifc, err
		}
		if ifc.Name != "" {
			what = fmt.Sprintf("%s: interface %q", host, ifc.Name)
		}
	}
	for _, name := range []string{"hwaddr", "network", "driver"} {
		dst := map[string]*string{"hwaddr": &ifc.HWAddr, "network": &ifc.Net, "driver": &ifc.Driver}[name]
		if f, ok := fs[name]; ok {
			if *dst, err = ps.str(f, what); err != nil {
				return ifc, err
			}
		}
	}
	if f, ok := fs["speed"]; ok {
		v := resolve(f.value)
		if v.Kind != yaml.ScalarNode || v.Decode(&ifc.Speed) != nil {
			return ifc, ps.errorf(v.Line, "%s: speed: want a number of Mbit/s, not %s", what, valueName(v))
		}
	}
	if f, ok := fs["sriov"]; ok {
		v := resolve(f.value)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&ifc.SRIOV) != nil {
			return ifc, ps.errorf(v.Line, "%s: sriov: want the number of VFs the NIC may have, not %s", what, valueName(v))
		}
	}
	if f, ok := fs["switchdev"]; ok {
		v := resolve(f.value)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&ifc.Switchdev) != nil {
			return ifc, ps.errorf(v.Line, "%s: switchdev: want true or false, not %s", what, valueName(v))
		}
	}
	if f, ok := fs["params"]; ok {
		if ifc.Params, err = ps.params(f, what); err != nil {
			return ifc, err
		}
	}
	for _, name := range ifaceFields {
		f, ok := fs[name]
		if !ok {
			continue
		}
		if err := checkIfaceField(&ifc, name); err != nil {
			return ifc, ps.errorf(resolve(f.value).Line, "%s: %v", what, err)
		}
	}
	if ifc.HWAddr != "" {
		mac, _ := net.ParseMAC(ifc.HWAddr)
		ifc.HWAddr = mac.String()
	}
	return ifc, nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}

func valueName(n *yaml.Node) string { return kindName(n) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Validate checks the pool as Parse does: unique host names, agent
// addresses, TLS files, interfaces. Errors are *FileError at the line of
// the host or interface.
func (p *Pool) Validate() error {
	errf := func(line int, format string, args ...any) error {
		return &FileError{File: p.Path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(p.Hosts) == 0 && len(p.Provisioners) == 0 {
		return errf(1, "no hosts: the pool file needs a list of hosts or provisioners")
	}
	first := map[string]int{}
	for i := range p.Hosts {
		h := &p.Hosts[i]
		if l, dup := first[h.Name]; dup && h.Name != "" {
			return errf(h.Line, "host name %q used twice (first at line %d)", h.Name, l)
		}
		first[h.Name] = h.Line
		if line, err := h.check(i); err != nil {
			return errf(line, "%v", err)
		}
	}
	if line, err := p.checkProvisioners(first); err != nil {
		return errf(line, "%v", err)
	}
	return nil
}

// check checks one host: its fields, then its interfaces. It returns the
// line of the host or interface at fault.
func (h *Host) check(i int) (int, error) {
	line, err := h.checkFields(i)
	if line == 0 {
		line = h.Line
	}
	return line, err
}

func (h *Host) checkFields(i int) (int, error) {
	what := fmt.Sprintf("host %q", h.Name)
	if h.Name == "" {
		what = fmt.Sprintf("host %d", i+1)
	}
	for _, check := range []func() error{
		func() error { return checkHostName(h.Name) },
		func() error { return checkAgent(h.Agent) },
		func() error { return checkTLS(*h) },
		func() error { return checkInsecure(h.Agent, h.Insecure, h.InsecureAnyAddress) },
		func() error { return checkArch(h.Arch) },
		func() error { return checkHostParams(h.Params) },
		func() error { return checkPowerConsole(*h) },
		func() error { return checkAllow(h.Allow) },
	} {
		if err := check(); err != nil {
			return h.Line, fmt.Errorf("%s: %w", what, err)
		}
	}
	return h.checkIfaces(what)
}

// checkIfaces checks the interfaces of a host that what names; it
// returns the line of the interface at fault.
func (h *Host) checkIfaces(what string) (int, error) {
	names := map[string]int{}
	macs := map[string]int{}
	for j := range h.Ifaces {
		ifc := &h.Ifaces[j]
		iw := fmt.Sprintf("%s: interface %d", what, j+1)
		if ifc.Name != "" {
			iw = fmt.Sprintf("%s: interface %q", what, ifc.Name)
		}
		if ifc.Name == "" && ifc.HWAddr == "" {
			return ifc.Line, fmt.Errorf("%s: give it a name or an hwaddr", iw)
		}
		for _, f := range ifaceFields {
			if err := checkIfaceField(ifc, f); err != nil {
				return ifc.Line, fmt.Errorf("%s: %w", iw, err)
			}
		}
		if l, dup := names[ifc.Name]; dup && ifc.Name != "" {
			return ifc.Line, fmt.Errorf("%s: name used twice on the host (first at line %d)", iw, l)
		}
		names[ifc.Name] = ifc.Line
		if ifc.HWAddr == "" {
			continue
		}
		mac, _ := net.ParseMAC(ifc.HWAddr)
		if l, dup := macs[mac.String()]; dup {
			return ifc.Line, fmt.Errorf("%s: hwaddr %s used twice on the host (first at line %d)", iw, mac, l)
		}
		macs[mac.String()] = ifc.Line
	}
	return 0, nil
}

func checkHostName(name string) error {
	if name == "" {
		return errors.New("missing name")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == utf8.RuneError }) {
		return fmt.Errorf("name %q: has white space or control characters", name)
	}
	return nil
}

func checkArch(arch string) error {
	if strings.ContainsFunc(arch, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("arch %q: has white space or control characters", arch)
	}
	return nil
}

func checkParams(params map[string]string) error {
	for k := range params {
		if k == "" {
			return errors.New("params: a param name is empty")
		}
	}
	return nil
}

// checkAgent checks an agent address: "unix:///abs/path" or "host:port".
func checkHostParams(params map[string]string) error {
	if err := checkParams(params); err != nil {
		return err
	}
	if _, ok := params["arch"]; ok {
		return errors.New(`params: "arch" is the arch field: give it as arch`)
	}
	return nil
}

func checkAgent(addr string) error {
	if addr == "" {
		return errors.New("missing agent: give its address, unix:///path or host:port")
	}
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !strings.HasPrefix(path, "/") || path == "/" || strings.ContainsRune(path, 0) {
			return fmt.Errorf("agent %q: want unix:///absolute/path", addr)
		}
		return nil
	}
	if strings.Contains(addr, "://") {
		return fmt.Errorf("agent %q: want unix:///path or host:port", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("agent %q: want unix:///path or host:port", addr)
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
		return fmt.Errorf("agent %q: bad host %q", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return fmt.Errorf("agent %q: bad port %q: want 1 to 65535", addr, port)
	}
	return nil
}

func checkTLS(h Host) error {
	t := h.TLS
	given := t.CA != "" || t.Cert != "" || t.Key != ""
	tcp := !strings.HasPrefix(h.Agent, "unix://")
	switch {
	case given && t.CA == "":
		return errors.New("tls: missing ca: the CA that signed the agent's certificate")
	case (t.Cert == "") != (t.Key == ""):
		return errors.New("tls: give cert and key together")
	case given && (h.Insecure || h.InsecureAnyAddress):
		return errors.New("tls and insecure: true contradict each other: choose one")
	case tcp && !given && !h.Insecure && !h.InsecureAnyAddress:
		return fmt.Errorf("agent %q is TCP without tls: give tls {ca, cert, key}, or insecure: true for plain TCP", h.Agent)
	}
	return nil
}

// checkInsecure checks that plain TCP (insecure) is asked for a loopback
// agent only, or with anyAddress, by its loud name.
func checkInsecure(agent string, insecure, anyAddress bool) error {
	if !insecure || anyAddress || agentconn.LoopbackAddr(agent) {
		return nil
	}
	return fmt.Errorf("insecure: true is for agents on loopback addresses (127.0.0.0/8, ::1, localhost) and unix sockets; agent %q is not one: "+
		"whoever is on the path would run commands on it without TLS; give tls {ca, cert, key}, or insecure_any_address: true to allow plain TCP there anyway", agent)
}

// maxVFs bounds sriov: PCIe SR-IOV allows 65535 VFs per PF (a TotalVFs
// of 16 bits).
const maxVFs = 65535

// checkIfaceField checks one field of an interface, by its YAML name.
func checkIfaceField(ifc *Iface, field string) error {
	switch field {
	case "name":
		if ifc.Name == "" {
			return nil
		}
		if err := devices.CheckName(ifc.Name); err != nil {
			return fmt.Errorf("name: %w", err)
		}
	case "hwaddr":
		if ifc.HWAddr == "" {
			return nil
		}
		if _, err := net.ParseMAC(ifc.HWAddr); err != nil {
			return fmt.Errorf("hwaddr %q: not a MAC address", ifc.HWAddr)
		}
	case "network":
		if strings.ContainsFunc(ifc.Net, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return fmt.Errorf("network %q: has control characters", ifc.Net)
		}
	case "driver":
		if strings.ContainsFunc(ifc.Driver, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("driver %q: has white space or control characters", ifc.Driver)
		}
	case "speed":
		if ifc.Speed < 0 {
			return fmt.Errorf("speed %d: must not be negative", ifc.Speed)
		}
	case "sriov":
		if ifc.SRIOV < 0 || ifc.SRIOV > maxVFs {
			return fmt.Errorf("sriov %d: want 0 to %d VFs", ifc.SRIOV, maxVFs)
		}
	case "params":
		if err := checkParams(ifc.Params); err != nil {
			return err
		}
		// A param of either name (older pool files have params: {sriov:
		// "yes"}) stands when the field is not given.
		if _, ok := ifc.Params["sriov"]; ok && ifc.SRIOV > 0 {
			return errors.New(`params: "sriov" is also the sriov field: give one`)
		}
		if _, ok := ifc.Params["switchdev"]; ok && ifc.Switchdev {
			return errors.New(`params: "switchdev" is also the switchdev field: give one`)
		}
		if _, ok := ifc.Params["speed"]; ok {
			return errors.New(`params: "speed" is the speed field: give it as speed`)
		}
	}
	return nil
}
