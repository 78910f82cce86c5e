package pool

import (
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParsePool checks that Parse does not panic, that a pool it
// accepts passes Validate, and that writing the pool back as YAML and
// parsing it again gives the same pool.
func FuzzParsePool(f *testing.F) {
	f.Add([]byte(hostsYAML))
	f.Add([]byte(powerYAML))
	f.Add([]byte(provYAML))
	f.Add([]byte("hosts:\n  - {name: m1, agent: \"198.18.0.11:7000\", insecure: true, allow: [reboot, reset]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("/lab.yaml", data)
		if err != nil {
			if _, ok := err.(*FileError); !ok {
				t.Fatalf("error %T is not a *FileError: %v", err, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed pool does not validate: %v", err)
		}
		out, err := yaml.Marshal(encodePool(p))
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse("/lab.yaml", out)
		if err != nil {
			t.Fatalf("written pool does not parse: %v\n%s", err, out)
		}
		if a, b := withoutLines(p), withoutLines(q); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the pool:\n%+v\n%+v\n%s", a, b, out)
		}
	})
}

func withoutLines(p *Pool) *Pool {
	c := *p
	c.Hosts = append([]Host(nil), p.Hosts...)
	for i := range c.Hosts {
		h := &c.Hosts[i]
		h.Line = 0
		if len(h.Params) == 0 {
			h.Params = nil
		}
		h.Ifaces = append([]Iface(nil), h.Ifaces...)
		for j := range h.Ifaces {
			h.Ifaces[j].Line = 0
			if len(h.Ifaces[j].Params) == 0 {
				h.Ifaces[j].Params = nil
			}
		}
	}
	c.Provisioners = append([]ExecSpec(nil), p.Provisioners...)
	for i := range c.Provisioners {
		e := &c.Provisioners[i]
		e.Line = 0
		if len(e.Params) == 0 {
			e.Params = nil
		}
		e.Ifaces = append([]Iface(nil), e.Ifaces...)
		for j := range e.Ifaces {
			e.Ifaces[j].Line = 0
			if len(e.Ifaces[j].Params) == 0 {
				e.Ifaces[j].Params = nil
			}
		}
	}
	return &c
}

// encodePool is p in the pool file's schema.
func encodePool(p *Pool) any {
	type tls struct {
		CA   string `yaml:"ca,omitempty"`
		Cert string `yaml:"cert,omitempty"`
		Key  string `yaml:"key,omitempty"`
	}
	type iface struct {
		Name   string            `yaml:"name,omitempty"`
		HWAddr string            `yaml:"hwaddr,omitempty"`
		Net    string            `yaml:"network,omitempty"`
		Driver string            `yaml:"driver,omitempty"`
		Speed  int               `yaml:"speed,omitempty"`
		Params map[string]string `yaml:"params,omitempty"`
	}
	type power struct {
		Reset   string `yaml:"reset"`
		Timeout string `yaml:"timeout,omitempty"`
	}
	type console struct {
		File    string `yaml:"file,omitempty"`
		Command string `yaml:"command,omitempty"`
	}
	type host struct {
		Name     string            `yaml:"name"`
		Agent    string            `yaml:"agent"`
		TLS      *tls              `yaml:"tls,omitempty"`
		Insecure bool              `yaml:"insecure,omitempty"`
		AnyAddr  bool              `yaml:"insecure_any_address,omitempty"`
		Arch     string            `yaml:"arch,omitempty"`
		Params   map[string]string `yaml:"params,omitempty"`
		Ifaces   []iface           `yaml:"interfaces,omitempty"`
		Power    *power            `yaml:"power,omitempty"`
		Console  *console          `yaml:"console,omitempty"`
		Allow    []string          `yaml:"allow,omitempty"`
	}
	var hosts []host
	for _, h := range p.Hosts {
		e := host{Name: h.Name, Agent: h.Agent, Insecure: h.Insecure, AnyAddr: h.InsecureAnyAddress, Arch: h.Arch, Params: h.Params, Allow: h.Allow}
		if h.TLS != (TLSFiles{}) {
			e.TLS = &tls{h.TLS.CA, h.TLS.Cert, h.TLS.Key}
		}
		if h.Power != (Power{}) {
			e.Power = &power{Reset: h.Power.Reset}
			if h.Power.Timeout != 0 {
				e.Power.Timeout = h.Power.Timeout.String()
			}
		}
		if h.Console != (Console{}) {
			e.Console = &console{h.Console.File, h.Console.Command}
		}
		for _, i := range h.Ifaces {
			e.Ifaces = append(e.Ifaces, iface{i.Name, i.HWAddr, i.Net, i.Driver, i.Speed, i.Params})
		}
		hosts = append(hosts, e)
	}
	type prov struct {
		Name     string            `yaml:"name"`
		Reserve  string            `yaml:"reserve"`
		Release  string            `yaml:"release"`
		Alive    string            `yaml:"alive,omitempty"`
		Max      int               `yaml:"max"`
		Timeout  string            `yaml:"timeout,omitempty"`
		Idle     string            `yaml:"idle,omitempty"`
		TLS      *tls              `yaml:"tls,omitempty"`
		Insecure bool              `yaml:"insecure,omitempty"`
		AnyAddr  bool              `yaml:"insecure_any_address,omitempty"`
		Arch     string            `yaml:"arch,omitempty"`
		Params   map[string]string `yaml:"params,omitempty"`
		Ifaces   []iface           `yaml:"interfaces,omitempty"`
		Allow    []string          `yaml:"allow,omitempty"`
	}
	var provs []prov
	for _, e := range p.Provisioners {
		x := prov{Name: e.Name, Reserve: e.Reserve, Release: e.Release, Alive: e.Alive, Max: e.Max, Insecure: e.Insecure, AnyAddr: e.InsecureAnyAddress, Arch: e.Arch, Params: e.Params, Allow: e.Allow}
		if e.Timeout != 0 {
			x.Timeout = e.Timeout.String()
		}
		if e.Idle != 0 {
			x.Idle = e.Idle.String()
		}
		if e.TLS != (TLSFiles{}) {
			x.TLS = &tls{e.TLS.CA, e.TLS.Cert, e.TLS.Key}
		}
		for _, i := range e.Ifaces {
			x.Ifaces = append(x.Ifaces, iface{i.Name, i.HWAddr, i.Net, i.Driver, i.Speed, i.Params})
		}
		provs = append(provs, x)
	}
	out := map[string]any{}
	if len(hosts) > 0 {
		out["hosts"] = hosts
	}
	if len(provs) > 0 {
		out["provisioners"] = provs
	}
	return out
}
