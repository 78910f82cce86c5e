package pool

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// powerYAML is a pool whose hosts name power commands and consoles.
const powerYAML = `hosts:
  - name: m1
    agent: unix:///run/a.sock
    power: {reset: "ipmitool -I lanplus -H m1-bmc power reset", timeout: 2m}
    console: {file: consoles/m1.log}
  - name: m2
    agent: unix:///run/b.sock
    power: {reset: ./reset m2}
    console: {command: "ipmitool -I lanplus -H m2-bmc sol activate"}
  - name: m3
    agent: unix:///run/c.sock
`

func TestParsePoolPowerConsole(t *testing.T) {
	p, err := Parse("/etc/lnst/lab.yaml", []byte(powerYAML))
	if err != nil {
		t.Fatal(err)
	}
	m1, m2, m3 := p.Hosts[0], p.Hosts[1], p.Hosts[2]
	if want := (Power{Reset: "ipmitool -I lanplus -H m1-bmc power reset", Timeout: 2 * time.Minute}); m1.Power != want {
		t.Errorf("m1 power = %+v, want %+v", m1.Power, want)
	}
	if want := filepath.FromSlash("/etc/lnst/consoles/m1.log"); m1.Console != (Console{File: want}) {
		t.Errorf("m1 console = %+v, want the file resolved against the pool file's directory, %s", m1.Console, want)
	}
	if m1.PowerTimeout() != 2*time.Minute {
		t.Errorf("m1 PowerTimeout = %v", m1.PowerTimeout())
	}
	if m2.Power != (Power{Reset: "./reset m2"}) || m2.PowerTimeout() != DefaultPowerTimeout {
		t.Errorf("m2 power = %+v, timeout %v", m2.Power, m2.PowerTimeout())
	}
	if m2.Console != (Console{Command: "ipmitool -I lanplus -H m2-bmc sol activate"}) {
		t.Errorf("m2 console = %+v", m2.Console)
	}
	if m3.Power != (Power{}) || m3.Console != (Console{}) {
		t.Errorf("m3 has no power or console, got %+v %+v", m3.Power, m3.Console)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParsePoolPowerConsoleErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"power not a mapping", hostsYAML + "    power: ipmitool power reset\n", `lab.yaml:4: host "m1": power: want a mapping, not "ipmitool power reset"`},
		{"power unknown field", hostsYAML + "    power: {reset: x, cycle: y}\n", `lab.yaml:4: host "m1": power: unknown field "cycle" (known: reset, timeout)`},
		{"power without reset", hostsYAML + "    power: {timeout: 1m}\n", `lab.yaml:4: host "m1": power: missing reset`},
		{"power empty reset", hostsYAML + "    power:\n      reset: \" \"\n", `lab.yaml:5: host "m1": power: reset: the command is empty`},
		{"power reset a list", hostsYAML + "    power: {reset: [a]}\n", `lab.yaml:4: host "m1": power: reset: want a string, not a list`},
		{"power bad timeout", hostsYAML + "    power:\n      reset: x\n      timeout: soon\n", `lab.yaml:6: host "m1": power: timeout: want a positive duration such as 90s or 2m, not "soon"`},
		{"power zero timeout", hostsYAML + "    power: {reset: x, timeout: 0s}\n", `lab.yaml:4: host "m1": power: timeout: want a positive duration`},
		{"console not a mapping", hostsYAML + "    console: /var/log/m1\n", `lab.yaml:4: host "m1": console: want a mapping, not "/var/log/m1"`},
		{"console both", hostsYAML + "    console:\n      file: a\n      command: b\n", `lab.yaml:6: host "m1": console: give file or command, not both`},
		{"console neither", hostsYAML + "    console: {}\n", `lab.yaml:4: host "m1": console: give file`},
		{"console empty file", hostsYAML + "    console: {file: \"\"}\n", `lab.yaml:4: host "m1": console: the file is empty`},
		{"console empty command", hostsYAML + "    console: {command: \"\"}\n", `lab.yaml:4: host "m1": console: the command is empty`},
		{"console unknown field", hostsYAML + "    console: {tty: /dev/ttyS0}\n", `lab.yaml:4: host "m1": console: unknown field "tty" (known: file, command)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("lab.yaml", []byte(tc.data))
			if err == nil {
				t.Fatalf("parsed %+v, want error %q", p, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant:\n  %s", err, tc.want)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Line == 0 {
				t.Errorf("error %#v is not a *FileError with a line", err)
			}
		})
	}
}

func TestValidatePowerConsole(t *testing.T) {
	h := Host{Name: "m1", Agent: "unix:///run/a.sock", Line: 2}
	for _, tc := range []struct {
		name string
		set  func(*Host)
		want string
	}{
		{"empty reset", func(h *Host) { h.Power = Power{Timeout: time.Minute} }, `host "m1": power: reset: the command is empty`},
		{"negative timeout", func(h *Host) { h.Power = Power{Reset: "x", Timeout: -time.Second} }, `host "m1": power: timeout -1s is negative`},
		{"console both", func(h *Host) { h.Console = Console{File: "a", Command: "b"} }, `host "m1": console: give file or command, not both`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h
			tc.set(&h)
			err := (&Pool{Path: "lab.yaml", Hosts: []Host{h}}).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
