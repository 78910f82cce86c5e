// Package kernlog parses kernel log records (as /dev/kmsg gives them) and
// finds the splats in them that mean the kernel went wrong: a WARNING, a
// BUG, an Oops, a general protection fault, a sanitizer (KASAN, KCSAN,
// KMSAN, UBSAN) report, a lockdep splat, an RCU stall, a soft or hard
// lockup, a hung task, a panic, or a device that cannot be unregistered
// ("unregister_netdevice: waiting for"). It is pure: no I/O.
package kernlog

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Record is one kernel log record.
type Record struct {
	// Seq is the kernel's sequence number of the record.
	Seq uint64
	// Level is its log level (0 emerg ... 7 debug); Facility its syslog
	// facility: 0 (kern) for what the kernel logged, 1 (user) or more for
	// a line a process wrote into /dev/kmsg.
	Level, Facility int
	// Micros is when it was logged, in microseconds since boot
	// (CLOCK_MONOTONIC).
	Micros int64
	// Text is the message, without the dictionary lines /dev/kmsg
	// appends to some records.
	Text string
}

// ParseKmsg parses one record as read(2) on /dev/kmsg returns it:
// "prio,seq,usec,flags[,...];message\n" followed by dictionary lines that
// start with a space, which are dropped. Escaped bytes (\xNN) are kept as
// the kernel escaped them.
func ParseKmsg(b []byte) (Record, error) {
	s := string(b)
	head, msg, ok := strings.Cut(s, ";")
	if !ok {
		return Record{}, fmt.Errorf("kmsg record %q: no ';' after its header", trim(s))
	}
	f := strings.Split(head, ",")
	if len(f) < 3 {
		return Record{}, fmt.Errorf("kmsg record %q: header %q has fewer than 3 fields", trim(s), head)
	}
	prio, err1 := strconv.Atoi(f[0])
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	us, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Record{}, fmt.Errorf("kmsg record %q: header %q is not prio,seq,usec", trim(s), head)
	}
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	return Record{Seq: seq, Level: prio & 7, Facility: prio >> 3, Micros: us, Text: msg}, nil
}

func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// splatStarts are the first lines of splats. Some kernels prefix a
// subsystem ("watchdog: BUG: soft lockup", "rcu: INFO: rcu_sched ...").
var splatStarts = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"lockdep", regexp.MustCompile(`^WARNING: (possible circular locking dependency|possible recursive locking|inconsistent lock state|bad unlock balance|suspicious RCU usage|held lock freed|lock held when returning to user space|nested lock was not taken|possible irq lock inversion)`)},
	{"lockdep", regexp.MustCompile(`\[ INFO: (possible circular locking dependency|possible recursive locking|inconsistent lock state)`)},
	{"warning", regexp.MustCompile(`^WARNING: `)},
	{"soft lockup", regexp.MustCompile(`(^|: )BUG: soft lockup`)},
	{"hard lockup", regexp.MustCompile(`(?i)watchdog detected hard lockup`)},
	{"kasan", regexp.MustCompile(`(^|: )BUG: KASAN: `)},
	{"kcsan", regexp.MustCompile(`(^|: )BUG: KCSAN: `)},
	{"kmsan", regexp.MustCompile(`(^|: )BUG: KMSAN: `)},
	{"ubsan", regexp.MustCompile(`^UBSAN: `)},
	{"bug", regexp.MustCompile(`(^|: )BUG: `)},
	{"bug", regexp.MustCompile(`^kernel BUG at `)},
	{"oops", regexp.MustCompile(`^(Internal error: )?Oops[:\s]`)},
	{"general protection fault", regexp.MustCompile(`^general protection fault`)},
	{"rcu stall", regexp.MustCompile(`INFO: rcu_\w+ (self-)?detected stall`)},
	{"rcu stall", regexp.MustCompile(`^rcu: INFO: `)},
	{"hung task", regexp.MustCompile(`^INFO: task .* blocked for more than \d+ seconds`)},
	{"panic", regexp.MustCompile(`^Kernel panic - not syncing`)},
	{"unregister_netdevice", regexp.MustCompile(`unregister_netdevice: waiting for `)},
}

// splatEnd ends a splat's text early.
var splatEnd = regexp.MustCompile(`^---\[ end (trace|Kernel panic)`)

// Splat is a report of the kernel having gone wrong.
type Splat struct {
	// Kind names what it is: "warning", "bug", "oops", "kasan", "lockdep",
	// "rcu stall", "soft lockup", "unregister_netdevice", ...
	Kind string
	// Seq and Micros are those of its first record.
	Seq    uint64
	Micros int64
	// Lines are its first lines: the record that starts it and up to
	// MaxLines-1 records after it, to its end-of-trace line.
	Lines []string
}

// MaxLines is how many lines of a splat Find keeps.
const MaxLines = 12

// Title is the splat's first line.
func (s Splat) Title() string { return s.Lines[0] }

// String is the splat's lines, one a line.
func (s Splat) String() string { return strings.Join(s.Lines, "\n") }

// Kind returns the kind of splat a line starts, "" if it starts none.
func Kind(line string) string {
	for _, p := range splatStarts {
		if p.re.MatchString(line) {
			return p.kind
		}
	}
	return ""
}

// Find returns the splats in records, in their order. A splat's lines
// after its first are not looked at for another splat start, but for a
// new WARNING or BUG line, which starts a new one (two WARNs in a row are
// two splats).
func Find(records []Record) []Splat {
	var out []Splat
	for i := 0; i < len(records); i++ {
		kind := Kind(records[i].Text)
		if kind == "" {
			continue
		}
		s := Splat{Kind: kind, Seq: records[i].Seq, Micros: records[i].Micros, Lines: []string{records[i].Text}}
		j := i + 1
		for ; j < len(records) && len(s.Lines) < MaxLines; j++ {
			t := records[j].Text
			if k := Kind(t); k != "" && !continues(kind, k) {
				break
			}
			s.Lines = append(s.Lines, t)
			if splatEnd.MatchString(t) {
				j++
				break
			}
		}
		// Records past MaxLines up to the end of the trace belong to it.
		for ; j < len(records) && len(s.Lines) >= MaxLines; j++ {
			if Kind(records[j].Text) != "" {
				break
			}
			if splatEnd.MatchString(records[j].Text) {
				j++
				break
			}
		}
		out = append(out, s)
		i = j - 1
	}
	return out
}

// continues reports whether a line of kind next inside a splat of kind
// first is part of it: the Oops line that follows a BUG, the panic a
// lockup ends in.
func continues(first, next string) bool {
	switch {
	case first == "bug" && next == "oops":
		return true
	case (first == "hard lockup" || first == "soft lockup") && next == "panic":
		return true
	}
	return false
}
