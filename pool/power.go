package pool

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Power is how the controller hard-resets a pool host out of band, past
// its agent and its kernel: a command run on the controller.
//
//	power: {reset: "ipmitool -I lanplus -H m1-bmc -U lnst -f /etc/lnst/bmc.pw power reset", timeout: 2m}
type Power struct {
	// Reset is a command line, run with /bin/sh -c on the controller,
	// that resets the machine: an IPMI or PDU command. "" when the pool
	// file names no power command.
	Reset string
	// Timeout bounds the command (DefaultPowerTimeout when not given).
	Timeout time.Duration
}

// DefaultPowerTimeout bounds a power command whose host gives no timeout.
const DefaultPowerTimeout = time.Minute

// Console is where the controller reads a pool host's console output:
// exactly one of File and Command, or neither.
//
//	console: {file: /var/log/conserver/m1.log}
//	console: {command: "ipmitool -I lanplus -H m1-bmc -U lnst -f /etc/lnst/bmc.pw sol activate"}
type Console struct {
	// File is a log file on the controller that something else keeps
	// writing the console to (conserver's logfile, a serial logger); a
	// relative path is resolved against the pool file's directory.
	File string
	// Command is a command line, run with /bin/sh -c on the controller
	// for as long as a recipe holds the host, whose standard output is
	// the console (ipmitool's sol activate, console -S).
	Command string
}

// power parses a host's power field.
func (ps *poolParser) power(f field, what string) (Power, error) {
	var p Power
	v := resolve(f.value)
	if isNull(v) {
		return p, nil
	}
	fs, err := ps.mapping(v, what+": power", powerFields)
	if err != nil {
		return p, err
	}
	r, ok := fs["reset"]
	if !ok {
		return p, ps.errorf(v.Line, "%s: power: missing reset: the command line that resets the machine", what)
	}
	if p.Reset, err = ps.str(r, what+": power"); err != nil {
		return p, err
	}
	if err := checkCommand(p.Reset); err != nil {
		return p, ps.errorf(resolve(r.value).Line, "%s: power: reset: %v", what, err)
	}
	if t, ok := fs["timeout"]; ok {
		tv := resolve(t.value)
		d, err := time.ParseDuration(tv.Value)
		if tv.Kind != yaml.ScalarNode || err != nil || d <= 0 {
			return p, ps.errorf(tv.Line, "%s: power: timeout: want a positive duration such as 90s or 2m, not %s", what, valueName(tv))
		}
		p.Timeout = d
	}
	return p, nil
}

// console parses a host's console field.
func (ps *poolParser) console(f field, what string) (Console, error) {
	var c Console
	v := resolve(f.value)
	if isNull(v) {
		return c, nil
	}
	fs, err := ps.mapping(v, what+": console", consoleFields)
	if err != nil {
		return c, err
	}
	file, hasFile := fs["file"]
	cmd, hasCmd := fs["command"]
	switch {
	case hasFile && hasCmd:
		return c, ps.errorf(cmd.key.Line, "%s: console: give file or command, not both", what)
	case !hasFile && !hasCmd:
		return c, ps.errorf(v.Line, "%s: console: give file (a log of the console on the controller) or command (one whose output is the console)", what)
	case hasFile:
		if c.File, err = ps.str(file, what+": console"); err != nil {
			return c, err
		}
		if c.File != "" && !filepath.IsAbs(c.File) {
			c.File = filepath.Join(ps.dir, c.File)
		}
	default:
		if c.Command, err = ps.str(cmd, what+": console"); err != nil {
			return c, err
		}
	}
	if c == (Console{}) {
		return c, ps.errorf(v.Line, "%s: console: the %s is empty", what, map[bool]string{true: "file", false: "command"}[hasFile])
	}
	if err := checkConsole(c); err != nil {
		return c, ps.errorf(v.Line, "%s: %v", what, err)
	}
	return c, nil
}

// checkCommand checks a command line of the pool file.
func checkCommand(cmd string) error {
	switch {
	case strings.TrimSpace(cmd) == "":
		return errors.New("the command is empty")
	case strings.ContainsRune(cmd, 0):
		return fmt.Errorf("command %q has a NUL byte", cmd)
	}
	return nil
}

// checkPowerConsole checks a host's power and console as Validate does.
func checkPowerConsole(h Host) error {
	if h.Power != (Power{}) {
		if err := checkCommand(h.Power.Reset); err != nil {
			return fmt.Errorf("power: reset: %w", err)
		}
		if h.Power.Timeout < 0 {
			return fmt.Errorf("power: timeout %v is negative", h.Power.Timeout)
		}
	}
	return checkConsole(h.Console)
}

func checkConsole(c Console) error {
	switch {
	case c == Console{}:
		return nil
	case c.File != "" && c.Command != "":
		return errors.New("console: give file or command, not both")
	case c.Command != "":
		if err := checkCommand(c.Command); err != nil {
			return fmt.Errorf("console: command: %w", err)
		}
	case c.File == "" || strings.ContainsRune(c.File, 0):
		return fmt.Errorf("console: file %q: want a path", c.File)
	}
	return nil
}

// PowerTimeout is how long the host's power command may run.
func (h *Host) PowerTimeout() time.Duration {
	if h.Power.Timeout > 0 {
		return h.Power.Timeout
	}
	return DefaultPowerTimeout
}
