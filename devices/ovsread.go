package devices

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Reading Open vSwitch back: its interfaces and ports from "ovs-vsctl
// --format=json list", its flows and their counters from "ovs-ofctl
// dump-flows".

// OvsInterface is a row of Open vSwitch's Interface table.
type OvsInterface struct {
	Name string
	// Type is "" for a system device, or internal, patch, vxlan, ...
	Type string
	// Options are its options (remote_ip, key, peer, ...).
	Options map[string]string
	// OfPort is its OpenFlow port number, -1 when it has none (it failed).
	OfPort int
	// Statistics are its counters (rx_packets, tx_bytes, ...).
	Statistics map[string]int64
}

// OvsPortRow is a row of Open vSwitch's Port table.
type OvsPortRow struct {
	Name string
	// Tag is its access VLAN, 0 for none; Trunks its trunk VLANs.
	Tag    int
	Trunks []int
	// BondMode is a bond's bond_mode, "" for a port that is no bond or
	// has the default.
	BondMode string
}

// OvsInterfacesArgv lists the Interface table as JSON, for
// ParseOvsInterfaces.
func OvsInterfacesArgv() []string {
	return ovsVsctl("--format=json", "--columns=name,type,options,ofport,statistics", "list", "Interface")
}

// OvsPortsArgv lists the Port table as JSON, for ParseOvsPorts.
func OvsPortsArgv() []string {
	return ovsVsctl("--format=json", "--columns=name,tag,trunks,bond_mode", "list", "Port")
}

// ovsTable is the JSON of ovs-vsctl --format=json list.
type ovsTable struct {
	Headings []string            `json:"headings"`
	Data     [][]json.RawMessage `json:"data"`
}

// rows decodes out into one map of column to cell per row.
func ovsRows(what string, out []byte) ([]map[string]json.RawMessage, error) {
	var tab ovsTable
	if err := json.Unmarshal(out, &tab); err != nil {
		return nil, fmt.Errorf("parse ovs-vsctl list %s: %w", what, err)
	}
	rows := make([]map[string]json.RawMessage, 0, len(tab.Data))
	for i, d := range tab.Data {
		if len(d) != len(tab.Headings) {
			return nil, fmt.Errorf("parse ovs-vsctl list %s: row %d has %d cells for %d headings", what, i+1, len(d), len(tab.Headings))
		}
		row := map[string]json.RawMessage{}
		for j, h := range tab.Headings {
			row[h] = d[j]
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// ovsAtoms decodes an OVSDB value: an atom, ["set", [atoms]], or ["map",
// [[k, v]...]] (returned as its pairs, flattened), with ["uuid", "..."]
// atoms as their strings.
func ovsAtoms(v json.RawMessage) ([]any, error) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return nil, err
	}
	arr, ok := x.([]any)
	if !ok {
		return []any{x}, nil
	}
	if len(arr) != 2 {
		return nil, fmt.Errorf("OVSDB value %s is neither an atom, a set nor a map", v)
	}
	tag, _ := arr[0].(string)
	switch tag {
	case "uuid", "named-uuid":
		return []any{arr[1]}, nil
	case "set":
		elems, ok := arr[1].([]any)
		if !ok {
			return nil, fmt.Errorf("OVSDB set %s has no list", v)
		}
		return elems, nil
	case "map":
		pairs, ok := arr[1].([]any)
		if !ok {
			return nil, fmt.Errorf("OVSDB map %s has no list", v)
		}
		var flat []any
		for _, p := range pairs {
			kv, ok := p.([]any)
			if !ok || len(kv) != 2 {
				return nil, fmt.Errorf("OVSDB map %s has a pair that is not [key, value]", v)
			}
			flat = append(flat, kv[0], kv[1])
		}
		return flat, nil
	}
	return nil, fmt.Errorf("OVSDB value %s has an unknown tag %q", v, tag)
}

// ovsString is a cell holding one string, or the empty set ("").
func ovsString(v json.RawMessage) (string, error) {
	a, err := ovsAtoms(v)
	if err != nil || len(a) == 0 {
		return "", err
	}
	s, ok := a[0].(string)
	if !ok || len(a) > 1 {
		return "", fmt.Errorf("OVSDB value %s is not one string", v)
	}
	return s, nil
}

// ovsInts is a cell of integers (an atom or a set).
func ovsInts(v json.RawMessage) ([]int64, error) {
	a, err := ovsAtoms(v)
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(a))
	for _, x := range a {
		f, ok := x.(float64)
		if !ok {
			return nil, fmt.Errorf("OVSDB value %s holds %v, not an integer", v, x)
		}
		out = append(out, int64(f))
	}
	return out, nil
}

// ParseOvsInterfaces parses the output of OvsInterfacesArgv, sorted by
// name.
func ParseOvsInterfaces(out []byte) ([]OvsInterface, error) {
	rows, err := ovsRows("Interface", out)
	if err != nil {
		return nil, err
	}
	var ifs []OvsInterface
	for _, r := range rows {
		var i OvsInterface
		fail := func(col string, err error) ([]OvsInterface, error) {
			return nil, fmt.Errorf("parse ovs-vsctl list Interface: %q column %s: %w", i.Name, col, err)
		}
		if i.Name, err = ovsString(r["name"]); err != nil {
			return fail("name", err)
		}
		if i.Type, err = ovsString(r["type"]); err != nil {
			return fail("type", err)
		}
		opts, err := ovsAtoms(r["options"])
		if err != nil {
			return fail("options", err)
		}
		i.Options = map[string]string{}
		for k := 0; k+1 < len(opts); k += 2 {
			key, _ := opts[k].(string)
			val, _ := opts[k+1].(string)
			i.Options[key] = val
		}
		ofport, err := ovsInts(r["ofport"])
		if err != nil {
			return fail("ofport", err)
		}
		i.OfPort = -1
		if len(ofport) == 1 {
			i.OfPort = int(ofport[0])
		}
		stats, err := ovsAtoms(r["statistics"])
		if err != nil {
			return fail("statistics", err)
		}
		i.Statistics = map[string]int64{}
		for k := 0; k+1 < len(stats); k += 2 {
			key, _ := stats[k].(string)
			val, _ := stats[k+1].(float64)
			i.Statistics[key] = int64(val)
		}
		ifs = append(ifs, i)
	}
	sort.Slice(ifs, func(a, b int) bool { return ifs[a].Name < ifs[b].Name })
	return ifs, nil
}

// ParseOvsPorts parses the output of OvsPortsArgv, sorted by name.
func ParseOvsPorts(out []byte) ([]OvsPortRow, error) {
	rows, err := ovsRows("Port", out)
	if err != nil {
		return nil, err
	}
	var ports []OvsPortRow
	for _, r := range rows {
		var p OvsPortRow
		fail := func(col string, err error) ([]OvsPortRow, error) {
			return nil, fmt.Errorf("parse ovs-vsctl list Port: %q column %s: %w", p.Name, col, err)
		}
		if p.Name, err = ovsString(r["name"]); err != nil {
			return fail("name", err)
		}
		tag, err := ovsInts(r["tag"])
		if err != nil {
			return fail("tag", err)
		}
		if len(tag) == 1 {
			p.Tag = int(tag[0])
		}
		trunks, err := ovsInts(r["trunks"])
		if err != nil {
			return fail("trunks", err)
		}
		for _, v := range trunks {
			p.Trunks = append(p.Trunks, int(v))
		}
		if p.BondMode, err = ovsString(r["bond_mode"]); err != nil {
			return fail("bond_mode", err)
		}
		ports = append(ports, p)
	}
	sort.Slice(ports, func(a, b int) bool { return ports[a].Name < ports[b].Name })
	return ports, nil
}

// OvsFlowStats is a flow as ovs-ofctl dump-flows shows it, with its
// counters.
type OvsFlowStats struct {
	Cookie          uint64
	Table, Priority int
	Packets, Bytes  int64
	// Match is the match as ovs-ofctl prints it ("ip,nw_dst=198.18.1.2"),
	// "" for every packet; Actions the actions ("output:2").
	Match, Actions string
}

// OvsDumpFlowsArgv dumps bridge's flows, for ParseOvsFlows.
func OvsDumpFlowsArgv(bridge string) []string {
	return []string{"ovs-ofctl", "dump-flows", bridge}
}

// ovsFlowFields are the fields of a dump-flows line that are no part of
// the match.
var ovsFlowFields = map[string]bool{
	"cookie": true, "duration": true, "table": true, "n_packets": true, "n_bytes": true,
	"idle_age": true, "hard_age": true, "idle_timeout": true, "hard_timeout": true,
	"priority": true, "reset_counts": true, "send_flow_rem": true, "importance": true,
}

// ParseOvsFlows parses the output of OvsDumpFlowsArgv (the reply header
// line, "NXST_FLOW reply ..." or "OFPST_FLOW reply ...", is skipped).
func ParseOvsFlows(out []byte) ([]OvsFlowStats, error) {
	var flows []OvsFlowStats
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.Contains(line, "_FLOW reply") {
			continue
		}
		head, actions, ok := strings.Cut(line, " actions=")
		if !ok {
			if head, actions, ok = strings.Cut(line, "actions="); !ok {
				return nil, fmt.Errorf("parse ovs-ofctl dump-flows line %d %q: no actions", n, line)
			}
		}
		f := OvsFlowStats{Actions: actions, Priority: ovsFlowDefaultPriority}
		var match []string
		// "cookie=0x0, duration=1.2s, table=0, ..., priority=100,ip,nw_dst=..."
		for _, part := range strings.FieldsFunc(head, func(r rune) bool { return r == ',' || r == ' ' }) {
			k, v, _ := strings.Cut(part, "=")
			if !ovsFlowFields[k] {
				match = append(match, part)
				continue
			}
			var err error
			switch k {
			case "cookie":
				f.Cookie, err = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			case "table":
				f.Table, err = strconv.Atoi(v)
			case "priority":
				f.Priority, err = strconv.Atoi(v)
			case "n_packets":
				f.Packets, err = strconv.ParseInt(v, 10, 64)
			case "n_bytes":
				f.Bytes, err = strconv.ParseInt(v, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("parse ovs-ofctl dump-flows line %d: %s: %w", n, part, err)
			}
		}
		f.Match = strings.Join(match, ",")
		flows = append(flows, f)
	}
	return flows, sc.Err()
}
