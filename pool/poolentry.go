package pool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// HostEntry is a host as AppendHost writes it in a pool file.
type HostEntry struct {
	Name  string
	Agent string // host:port
	// TLS are the paths as written in the pool file: relative to its
	// directory, or absolute.
	TLS  TLSFiles
	Arch string // uname -m
	// Comment is the comment line written before the entry, without "# ".
	Comment string
	// Notes are comment lines written at the end of the entry, without
	// "# " (the interfaces found on the host, to fill in).
	Notes []string
}

// AppendHost returns the pool file data (nil or empty: a new file) with
// e added at the end of its list of hosts, keeping every other line,
// comments included, as it was. The result is checked as a whole with
// Parse, under the name file.
func AppendHost(file string, data []byte, e HostEntry) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("hosts:\n")
	} else if _, err := Parse(file, data); err != nil {
		return nil, fmt.Errorf("pool file %s: %w: fix it before adding a host", file, err)
	}
	data = withNewline(data)
	r, err := hostsRegion(file, data)
	if err != nil {
		return nil, err
	}
	var entry bytes.Buffer
	at, indent := len(r.lines), 2 // no hosts key: a new list at the end
	switch {
	case r.seq != nil && r.seq.Style&yaml.FlowStyle != 0:
		return nil, fmt.Errorf("pool file %s:%d: hosts is a flow list ([...]): write it as a block list (- name: ...) so that hosts can be added", file, r.seq.Line)
	case len(r.items) > 0:
		at, indent = r.end, r.items[0].indent
	case r.keyLine > 0: // "hosts:" with nothing under it
		at = r.keyLine
	default:
		entry.WriteString("hosts:\n")
	}
	writeEntry(&entry, strings.Repeat(" ", indent), e)
	out := strings.Join(r.lines[:at], "") + entry.String() + strings.Join(r.lines[at:], "")
	p, err := Parse(file, []byte(out))
	if err != nil {
		return nil, fmt.Errorf("pool file %s: the host to add is not valid: %w", file, err)
	}
	if last := p.Hosts[len(p.Hosts)-1]; last.Name != e.Name || last.Agent != e.Agent {
		return nil, fmt.Errorf("pool file %s: the added host did not end the list of hosts", file)
	}
	return []byte(out), nil
}

// writeEntry writes e as a block list item indented by indent.
func writeEntry(w io.Writer, indent string, e HostEntry) {
	if e.Comment != "" {
		fmt.Fprintf(w, "%s# %s\n", indent, e.Comment)
	}
	fmt.Fprintf(w, "%s- name: %s\n", indent, yamlString(e.Name))
	fmt.Fprintf(w, "%s  agent: %s\n", indent, yamlString(e.Agent))
	if e.TLS != (TLSFiles{}) {
		fmt.Fprintf(w, "%s  tls: {ca: %s, cert: %s, key: %s}\n", indent, yamlString(e.TLS.CA), yamlString(e.TLS.Cert), yamlString(e.TLS.Key))
	}
	if e.Arch != "" {
		fmt.Fprintf(w, "%s  arch: %s\n", indent, yamlString(e.Arch))
	}
	for _, n := range e.Notes {
		fmt.Fprintf(w, "%s  # %s\n", indent, n)
	}
}

// yamlString is s as a YAML scalar that reads back as the string s.
func yamlString(s string) string {
	b, err := yaml.Marshal(s)
	if out := strings.TrimSuffix(string(b), "\n"); err == nil && !strings.Contains(out, "\n") {
		return out
	}
	return strconv.Quote(s)
}

// RemoveHost returns the pool file data without the host named name and,
// when comment is not "", the comment line right above it if that starts
// with "# "+comment (the Comment its AppendHost wrote); every other line
// is kept. When it was the only host, the "hosts:" key goes too. found is
// false when the file has no such host; left is false when no host
// remains.
func RemoveHost(file string, data []byte, name, comment string) (out []byte, found, left bool, err error) {
	p, err := Parse(file, data)
	if err != nil {
		return nil, false, false, fmt.Errorf("pool file %s: %w: fix it before removing a host", file, err)
	}
	idx := -1
	for i, h := range p.Hosts {
		if h.Name == name {
			idx = i
		}
	}
	if idx < 0 {
		return data, false, len(p.Hosts) > 0, nil
	}
	data = withNewline(data)
	r, err := hostsRegion(file, data)
	if err != nil {
		return nil, false, false, err
	}
	if len(r.items) != len(p.Hosts) {
		return nil, false, false, fmt.Errorf("pool file %s: found %d hosts in its text, %d in the pool: edit it by hand", file, len(r.items), len(p.Hosts))
	}
	it := r.items[idx]
	start, end := it.line-1, r.end // 0-based, [start, end)
	if idx+1 < len(r.items) {
		end = r.items[idx+1].line - 1
		// Comments and blank lines before the next host, at the list's
		// indent or less, are the next host's.
		for end > start+1 && isOuterFiller(r.lines[end-1], it.indent) {
			end--
		}
	}
	if start > 0 && comment != "" && strings.HasPrefix(strings.TrimSpace(r.lines[start-1]), "# "+comment) {
		start--
	}
	if len(p.Hosts) == 1 {
		start = r.keyLine - 1
	}
	kept := strings.Join(r.lines[:start], "") + strings.Join(r.lines[end:], "")
	if len(p.Hosts) == 1 {
		return []byte(kept), true, false, nil
	}
	if _, err := Parse(file, []byte(kept)); err != nil {
		return nil, false, false, fmt.Errorf("pool file %s: without host %q it does not parse: %w", file, name, err)
	}
	return []byte(kept), true, true, nil
}

// withNewline is data ending with a newline.
func withNewline(data []byte) []byte {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return append(data[:len(data):len(data)], '\n')
	}
	return data
}

// isOuterFiller reports whether line is blank, or a comment indented by
// at most indent.
func isOuterFiller(line string, indent int) bool {
	t := strings.TrimLeft(line, " ")
	return strings.TrimSpace(t) == "" || (strings.HasPrefix(t, "#") && len(line)-len(t) <= indent)
}

// hostItem is where one host of the list starts: the line of its dash
// (1-based) and the dash's indent.
type hostItem struct{ line, indent int }

// region is where the hosts list of a pool file is in its text.
type region struct {
	lines   []string   // the file's lines, each with its newline
	keyLine int        // line of the "hosts" key, 1-based; 0 if none
	seq     *yaml.Node // the list; nil if hosts is missing or null
	items   []hostItem // empty for a flow list
	end     int        // 0-based index of the first line after the list
}

// hostsRegion finds the hosts list of a pool file (data ends with a
// newline) and where each of its items starts in the text.
func hostsRegion(file string, data []byte) (region, error) {
	r := region{lines: strings.SplitAfter(string(data), "\n")}
	r.lines = r.lines[:len(r.lines)-1] // the empty string after the last newline
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return r, fmt.Errorf("pool file %s: %w", file, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return r, fmt.Errorf("pool file %s: not a mapping of hosts", file)
	}
	m := doc.Content[0]
	nextKey := 0 // line of the key after hosts, 1-based; 0 if none
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "hosts" {
			continue
		}
		r.keyLine = m.Content[i].Line
		if v := m.Content[i+1]; v.Kind == yaml.SequenceNode {
			r.seq = v
		} else if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!null" {
			return r, fmt.Errorf("pool file %s:%d: hosts is not written as a list here (an alias?): edit it by hand", file, v.Line)
		}
		if i+2 < len(m.Content) {
			nextKey = m.Content[i+2].Line
		}
	}
	r.end = len(r.lines)
	if nextKey > 0 {
		r.end = nextKey - 1
	}
	if r.seq == nil || r.seq.Style&yaml.FlowStyle != 0 {
		return r, nil
	}
	for _, n := range r.seq.Content {
		it, err := dashOf(r.lines, n)
		if err != nil {
			return r, fmt.Errorf("pool file %s:%d: %w", file, n.Line, err)
		}
		r.items = append(r.items, it)
	}
	// Comments and blank lines after the list, at its indent or less,
	// are the next key's or the file's.
	if len(r.items) > 0 {
		last := r.items[len(r.items)-1]
		for r.end > last.line && isOuterFiller(r.lines[r.end-1], last.indent) {
			r.end--
		}
	}
	return r, nil
}

// dashOf finds the dash starting the block list item n: on n's own line
// before it ("- name: m1"), or alone on a line above it.
func dashOf(lines []string, n *yaml.Node) (hostItem, error) {
	if n.Line < 1 || n.Line > len(lines) {
		return hostItem{}, errors.New("host out of the text")
	}
	if l := lines[n.Line-1]; n.Column-1 <= len(l) {
		before := strings.TrimRight(l[:n.Column-1], " ")
		if strings.TrimLeft(before, " ") == "-" {
			return hostItem{line: n.Line, indent: len(before) - 1}, nil
		}
	}
	for i := n.Line - 2; i >= 0; i-- {
		t := strings.TrimSpace(lines[i])
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if t == "-" {
			return hostItem{line: i + 1, indent: strings.Index(lines[i], "-")}, nil
		}
		break
	}
	return hostItem{}, errors.New("cannot find the dash of this host: write hosts as a block list (- name: ...)")
}
