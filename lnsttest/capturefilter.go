package lnsttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// tcpdumpLinkName is tcpdump's -y name of a link type.
func tcpdumpLinkName(lt layers.LinkType) string {
	if lt == layers.LinkTypeRaw {
		return "RAW"
	}
	return "EN10MB"
}

// tcpdumpArgv is the command that compiles filter to BPF for link type lt,
// cutting packets to snaplen.
func tcpdumpArgv(tcpdump, filter string, lt layers.LinkType, snaplen int) []string {
	return []string{tcpdump, "-ddd", "-y", tcpdumpLinkName(lt), "-s", strconv.Itoa(snaplen), "--", filter}
}

// errNoTcpdump: tcpdump is installed neither on the controller nor on the
// host.
var errNoTcpdump = errors.New("tcpdump is installed neither on the controller nor on the host, and a filter in tcpdump's syntax needs it to compile: capture with filter \"\" and select packets with a packets.Match (Capture.Match, ExpectPackets)")

// compileFilter compiles a tcpdump filter to BPF: with the controller's
// tcpdump, or else with the host's.
func compileFilter(ctx context.Context, h *Host, filter string, lt layers.LinkType, snaplen int) ([]*pb.CaptureInstruction, error) {
	var out, stderr []byte
	if path, err := exec.LookPath("tcpdump"); err == nil {
		var eb bytes.Buffer
		argv := tcpdumpArgv(path, filter, lt, snaplen)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stderr = &eb
		out, err = cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("filter %q: tcpdump on the controller cannot compile it: %s", filter, lastLine(eb.String(), err))
		}
	} else {
		r, err := h.client.RunJob(ctx, &pb.StartJobRequest{Host: h.id, Argv: tcpdumpArgv("tcpdump", filter, lt, snaplen), Internal: true})
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				return nil, fmt.Errorf("filter %q: %w", filter, errNoTcpdump)
			}
			return nil, fmt.Errorf("filter %q: run tcpdump on %s to compile it: %w", filter, h.name, err)
		}
		out, stderr = r.Stdout, r.Stderr
		switch {
		case r.ExitCode == 127 || r.Error != "" && strings.Contains(r.Error, "not found"):
			return nil, fmt.Errorf("filter %q: %w", filter, errNoTcpdump)
		case r.ExitCode != 0 || r.Error != "":
			return nil, fmt.Errorf("filter %q: tcpdump on %s cannot compile it: %s", filter, h.name, lastLine(string(stderr), errors.New(r.Error)))
		}
	}
	prog, err := parseDDD(string(out))
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", filter, err)
	}
	return prog, nil
}

// lastLine is the last line of a command's stderr, or its error.
func lastLine(stderr string, err error) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if l := lines[len(lines)-1]; l != "" {
		return l
	}
	return err.Error()
}

// parseDDD reads a BPF program as tcpdump -ddd prints it: the number of
// instructions, then one "code jt jf k" line each, in decimal.
func parseDDD(s string) ([]*pb.CaptureInstruction, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n < 1 || n != len(lines)-1 {
		return nil, fmt.Errorf("tcpdump -ddd printed %q, not a program", firstLine(s))
	}
	prog := make([]*pb.CaptureInstruction, n)
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		var v [4]uint64
		if len(f) != 4 {
			return nil, fmt.Errorf("tcpdump -ddd line %d %q is not \"code jt jf k\"", i+2, l)
		}
		for j := range f {
			if v[j], err = strconv.ParseUint(f[j], 10, 32); err != nil {
				return nil, fmt.Errorf("tcpdump -ddd line %d %q: %v", i+2, l, err)
			}
		}
		prog[i] = &pb.CaptureInstruction{Op: uint32(v[0]), Jt: uint32(v[1]), Jf: uint32(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
