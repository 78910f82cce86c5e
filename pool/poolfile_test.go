package pool

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPool(t *testing.T) {
	p, err := Load("testdata/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 3 {
		t.Fatalf("got %d hosts, want 3", len(p.Hosts))
	}
	m1, m2, local := p.Hosts[0], p.Hosts[1], p.Hosts[2]
	if m1.Name != "m1" || m1.Line != 3 || m1.Arch != "x86_64" || m1.Params["numa"] != "2" || m1.Params["rack"] != "r1" {
		t.Errorf("m1 = %+v", m1)
	}
	if want := filepath.Join("testdata", "certs", "ca.pem"); m1.TLS.CA != want {
		t.Errorf("m1 tls ca = %q, want %q", m1.TLS.CA, want)
	}
	if len(m1.Ifaces) != 2 || m1.Ifaces[1].Name != "enp3s0f1" || m1.Ifaces[1].Net != "lan2" || m1.Ifaces[1].Speed != 10000 || m1.Ifaces[1].Line != 10 {
		t.Errorf("m1 interfaces = %+v", m1.Ifaces)
	}
	if !m2.InsecureAnyAddress || m2.Agent != "[2001:db8::2]:7777" || m2.Ifaces[0].HWAddr != "52:54:00:00:02:01" || m2.Ifaces[0].Params["sriov"] != "yes" {
		t.Errorf("m2 = %+v", m2)
	}
	if local.Agent != "unix:///run/lnst-agent.sock" || local.Ifaces[0].Driver != "virtio_net" {
		t.Errorf("local = %+v", local)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestPoolInsecureLoopback: insecure: true is taken for agents on
// loopback addresses and unix sockets, and for any address with
// insecure_any_address: true; Validate checks a pool built in code alike.
func TestPoolInsecureLoopback(t *testing.T) {
	for _, agent := range []string{"127.0.0.1:7777", "127.0.1.1:7777", "\"[::1]:7777\"", "localhost:7777"} {
		if _, err := Parse("lab.yaml", []byte("hosts:\n  - name: m1\n    agent: "+agent+"\n    insecure: true\n")); err != nil {
			t.Errorf("insecure on %s: %v", agent, err)
		}
	}
	p, err := Parse("lab.yaml", []byte("hosts:\n  - name: m1\n    agent: 198.18.0.5:7777\n    insecure_any_address: true\n"))
	if err != nil {
		t.Fatalf("insecure_any_address: %v", err)
	}
	if h := p.Hosts[0]; !h.InsecureAnyAddress {
		t.Errorf("host %+v: want InsecureAnyAddress", h)
	}
	if o, err := p.Hosts[0].dialOptions(); err != nil || !o.Insecure {
		t.Errorf("dialOptions = %+v, %v: want Insecure", o, err)
	}
	p = &Pool{Path: "code", Hosts: []Host{{Name: "m1", Agent: "198.18.0.5:7777", Insecure: true, Line: 1}}}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `insecure: true is for agents on loopback addresses`) {
		t.Errorf("Validate = %v, want the insecure error", err)
	}
}

func TestLoadPoolMissingFile(t *testing.T) {
	if _, err := Load("testdata/no-such.yaml"); err == nil || !strings.Contains(err.Error(), "no-such.yaml") {
		t.Errorf("err = %v, want one naming the file", err)
	}
}

// hostsYAML is the start of a pool file: one good host, m1, at line 2.
const hostsYAML = "hosts:\n  - name: m1\n    agent: unix:///run/a.sock\n"

func TestParsePoolErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "lab.yaml:1: empty pool file: it needs a list of hosts"},
		{"comments only", "# nothing\n", "lab.yaml:1: empty pool file"},
		{"null", "~\n", "lab.yaml:1: empty pool file"},
		{"no hosts field", "{}\n", "lab.yaml:1: no hosts: the pool file needs a list of hosts"},
		{"no hosts", "hosts: []\n", "lab.yaml:1: no hosts: the list of hosts is empty"},
		{"null hosts", "hosts:\n", "lab.yaml:1: no hosts"},
		{"hosts not a list", "hosts: {a: b}\n", `lab.yaml:1: hosts: want a list of hosts, not a mapping`},
		{"syntax", "hosts:\n  - name: [\n", "lab.yaml:2: yaml: did not find expected node content"},
		{"tab", "hosts:\n\t- name: x\n", "lab.yaml:2: yaml: "},
		{"two documents", hostsYAML + "---\nhosts: []\n", "lab.yaml:4: a second YAML document"},
		{"unknown top field", "networks: []\n" + strings.TrimPrefix(hostsYAML, ""), `lab.yaml:1: pool file: unknown field "networks" (known: hosts, provisioners)`},
		{"unknown host field", hostsYAML + "    color: red\n", `lab.yaml:4: host "m1": unknown field "color" (known: name, agent, tls, insecure, insecure_any_address, arch, params, interfaces, power, console, allow)`},
		{"unknown allow", hostsYAML + "    allow: [reboot, poweroff]\n", `lab.yaml:4: host "m1": allow: unknown destructive kind "poweroff" (known: reboot, kernel, reset)`},
		{"allow block list", hostsYAML + "    allow:\n      - kernel\n      - reebot\n", `lab.yaml:6: host "m1": allow: unknown destructive kind "reebot"`},
		{"allow twice", hostsYAML + "    allow: [reset, reset]\n", `lab.yaml:4: host "m1": allow: "reset" given twice (first at line 4)`},
		{"allow not a list", hostsYAML + "    allow: reboot\n", `lab.yaml:4: host "m1": allow: want a list of reboot, kernel, reset, not "reboot"`},
		{"allow item not a string", hostsYAML + "    allow: [[reboot]]\n", `lab.yaml:4: host "m1": allow: want one of reboot, kernel, reset, not a list`},
		{"provisioner allow", provYAML + "    allow: [kexec]\n", `provisioner "cloud": allow: unknown destructive kind "kexec"`},
		{"unknown iface field", hostsYAML + "    interfaces:\n      - {name: eth0, mtu: 9000}\n", `lab.yaml:5: host "m1": interface 1: unknown field "mtu"`},
		{"unknown tls field", hostsYAML + "    tls: {ca: a, pem: b}\n", `lab.yaml:4: host "m1": tls: unknown field "pem" (known: ca, cert, key)`},
		{"field twice", hostsYAML + "    arch: x86_64\n    arch: aarch64\n", `lab.yaml:5: host "m1": field "arch" given twice (first at line 4)`},
		{"host not a mapping", "hosts:\n  - m1\n", `lab.yaml:2: host 1: want a mapping, not "m1"`},
		{"missing name", "hosts:\n  - agent: unix:///a\n", `lab.yaml:2: host 1: missing name`},
		{"name used twice", hostsYAML + "  - name: m1\n    agent: unix:///b\n", `lab.yaml:4: host name "m1" used twice (first at line 2)`},
		{"missing agent", "hosts:\n  - name: m1\n", `lab.yaml:2: host "m1": missing agent`},
		{"agent not a string", "hosts:\n  - name: m1\n    agent: [a]\n", `lab.yaml:3: host "m1": agent: want a string, not a list`},
		{"agent relative unix", "hosts:\n  - name: m1\n    agent: unix://run/a.sock\n", `lab.yaml:3: host "m1": agent "unix://run/a.sock": want unix:///absolute/path`},
		{"agent scheme", "hosts:\n  - name: m1\n    agent: http://m1:80\n", `lab.yaml:3: host "m1": agent "http://m1:80": want unix:///path or host:port`},
		{"agent no port", "hosts:\n  - name: m1\n    agent: m1\n    insecure: true\n", `lab.yaml:3: host "m1": agent "m1": want unix:///path or host:port`},
		{"agent bad port", "hosts:\n  - name: m1\n    agent: m1:70000\n    insecure: true\n", `lab.yaml:3: host "m1": agent "m1:70000": bad port "70000": want 1 to 65535`},
		{"agent port zero", "hosts:\n  - name: m1\n    agent: m1:0\n    insecure: true\n", `bad port "0"`},
		{"agent no host", "hosts:\n  - name: m1\n    agent: :7777\n    insecure: true\n", `lab.yaml:3: host "m1": agent ":7777": bad host ""`},
		{"tcp without tls", "hosts:\n  - name: m1\n    agent: m1:7777\n", `lab.yaml:3: host "m1": agent "m1:7777" is TCP without tls: give tls {ca, cert, key}, or insecure: true for plain TCP`},
		{"tls without ca", "hosts:\n  - name: m1\n    agent: m1:7777\n    tls: {cert: c, key: k}\n", `lab.yaml:4: host "m1": tls: missing ca`},
		{"tls cert without key", "hosts:\n  - name: m1\n    agent: m1:7777\n    tls: {ca: a, cert: c}\n", `lab.yaml:4: host "m1": tls: give cert and key together`},
		{"tls and insecure", "hosts:\n  - name: m1\n    agent: m1:7777\n    insecure: true\n    tls: {ca: a}\n", `lab.yaml:5: host "m1": tls and insecure: true contradict`},
		{"insecure not loopback", "hosts:\n  - name: m1\n    agent: 198.18.0.5:7777\n    insecure: true\n", `lab.yaml:4: host "m1": insecure: true is for agents on loopback addresses (127.0.0.0/8, ::1, localhost) and unix sockets; agent "198.18.0.5:7777" is not one`},
		{"insecure any", "hosts:\n  - name: m1\n    agent: 0.0.0.0:7777\n    insecure: true\n", `lab.yaml:4: host "m1": insecure: true is for agents on loopback`},
		{"insecure name", "hosts:\n  - name: m1\n    agent: m1.lab:7777\n    arch: x86_64\n    insecure: true\n", `lab.yaml:5: host "m1": insecure: true is for agents on loopback addresses (127.0.0.0/8, ::1, localhost) and unix sockets; agent "m1.lab:7777"`},
		{"insecure any address not bool", hostsYAML + "    insecure_any_address: yes please\n", `lab.yaml:4: host "m1": insecure_any_address: want true or false`},
		{"insecure any address and tls", "hosts:\n  - name: m1\n    agent: m1:7777\n    insecure_any_address: true\n    tls: {ca: a}\n", `lab.yaml:5: host "m1": tls and insecure: true contradict`},
		{"insecure not bool", hostsYAML + "    insecure: maybe\n", `lab.yaml:4: host "m1": insecure: want true or false, not "maybe"`},
		{"params not a mapping", hostsYAML + "    params: [a]\n", `lab.yaml:4: host "m1": params: want a mapping of names to values, not a list`},
		{"param not a string", hostsYAML + "    params: {rack: {row: 1}}\n", `lab.yaml:4: host "m1": params: rack: want a string, not a mapping`},
		{"param arch", hostsYAML + "    params: {arch: x86_64}\n", `lab.yaml:4: host "m1": params: "arch" is the arch field`},
		{"interfaces not a list", hostsYAML + "    interfaces: eth0\n", `lab.yaml:4: host "m1": interfaces: want a list, not "eth0"`},
		{"iface without name or hwaddr", hostsYAML + "    interfaces:\n      - {network: n1}\n", `lab.yaml:5: host "m1": interface 1: give it a name or an hwaddr`},
		{"bad hwaddr", hostsYAML + "    interfaces:\n      - {name: eth0}\n      - network: n1\n        hwaddr: zz:00\n", `lab.yaml:7: host "m1": interface 2: hwaddr "zz:00": not a MAC address`},
		{"bad iface name", hostsYAML + "    interfaces:\n      - {name: a/b}\n", `lab.yaml:5: host "m1": interface "a/b": name: device name "a/b" has a character`},
		{"iface name twice", hostsYAML + "    interfaces:\n      - {name: eth0}\n      - {name: eth0}\n", `lab.yaml:6: host "m1": interface "eth0": name used twice on the host (first at line 5)`},
		{"hwaddr twice", hostsYAML + "    interfaces:\n      - {hwaddr: 52:54:00:00:00:01}\n      - {hwaddr: 52-54-00-00-00-01}\n", `lab.yaml:6: host "m1": interface 2: hwaddr 52:54:00:00:00:01 used twice on the host (first at line 5)`},
		{"negative speed", hostsYAML + "    interfaces:\n      - name: eth0\n        speed: -1\n", `lab.yaml:6: host "m1": interface "eth0": speed -1: must not be negative`},
		{"speed not a number", hostsYAML + "    interfaces:\n      - {name: eth0, speed: fast}\n", `lab.yaml:5: host "m1": interface "eth0": speed: want a number of Mbit/s, not "fast"`},
		{"speed param", hostsYAML + "    interfaces:\n      - {name: eth0, params: {speed: 10}}\n", `lab.yaml:5: host "m1": interface "eth0": params: "speed" is the speed field`},
		{"bad utf-8", "hosts:\n  - name: \xff\n", "lab.yaml:2: yaml: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("lab.yaml", []byte(tc.data))
			if err == nil {
				t.Fatalf("parsed %+v, want error %q", p, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant:\n  %s", err, tc.want)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != "lab.yaml" || fe.Line == 0 {
				t.Errorf("error %#v is not a *FileError with a line", err)
			}
		})
	}
}

func TestParsePoolAliases(t *testing.T) {
	data := `hosts:
  - name: m1
    agent: unix:///a
    params: &p {rack: r1}
    interfaces:
      - &eth {name: eth0, network: n1, driver: ixgbe}
  - name: m2
    agent: unix:///b
    params: *p
    interfaces: [*eth]
`
	p, err := Parse("lab.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if p.Hosts[1].Params["rack"] != "r1" || p.Hosts[1].Ifaces[0].Driver != "ixgbe" {
		t.Errorf("m2 = %+v", p.Hosts[1])
	}
}

func TestValidate(t *testing.T) {
	p := &Pool{Path: "x.yaml", Hosts: []Host{
		{Name: "a", Agent: "unix:///a", Line: 2, Ifaces: []Iface{{Name: "eth0", Speed: -5, Line: 4}}},
	}}
	err := p.Validate()
	if err == nil || err.Error() != `x.yaml:4: host "a": interface "eth0": speed -5: must not be negative` {
		t.Errorf("Validate = %v", err)
	}
	if err := (&Pool{Path: "x.yaml"}).Validate(); err == nil {
		t.Error("Validate of a pool without hosts passed")
	}
}

func TestParsePoolAllow(t *testing.T) {
	p, err := Parse("lab.yaml", []byte(hostsYAML+"    allow: [reboot, reset]\n  - name: m2\n    agent: unix:///run/b.sock\n"+
		provYAML+"    allow:\n      - kernel\n"))
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := &p.Hosts[0], &p.Hosts[1]
	for _, c := range []struct {
		h    *Host
		kind string
		want bool
	}{
		{m1, AllowReboot, true}, {m1, AllowReset, true}, {m1, AllowKernel, false},
		{m2, AllowReboot, false}, {m2, AllowKernel, false}, {m2, AllowReset, false},
	} {
		if got := c.h.Allows(c.kind); got != c.want {
			t.Errorf("%s allows %s = %v, want %v (allow %v)", c.h.Name, c.kind, got, c.want, c.h.Allow)
		}
	}
	slot := p.Provisioners[0].Template(1)
	if !slot.Allows(AllowKernel) || slot.Allows(AllowReboot) {
		t.Errorf("a provisioner's machine has allow %v, want [kernel]", slot.Allow)
	}
	if w := m1.Where("lab.yaml"); w != "pool host m1 (lab.yaml:2)" {
		t.Errorf("Where = %q", w)
	}
	bad := *p
	bad.Hosts = append([]Host(nil), p.Hosts...)
	bad.Hosts[1].Allow = []string{"shutdown"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `host "m2": allow: unknown destructive kind "shutdown"`) {
		t.Errorf("Validate of a host allowing shutdown: %v", err)
	}
}
