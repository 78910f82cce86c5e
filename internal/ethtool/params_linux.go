package ethtool

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// A parameter is one setting of a ring or coalesce message: the attribute
// that carries it, whether it is a u8 (a flag: 0 or 1) rather than a u32,
// and for a ring size the attribute of its maximum.
type param struct {
	attr uint16
	u8   bool
	// wide marks a u8 that is a number (0-255), not a flag.
	wide bool
	max  uint16
}

// paramSet is the settings of one ethtool message pair (get and set), by
// the names the ethtool command takes.
type paramSet struct {
	what      string // "ring" or "coalesce", in messages
	cli       string // the ethtool option that sets them, in messages
	get, set  uint8  // ETHTOOL_MSG_*_GET and _SET
	hdrAttr   uint16 // ETHTOOL_A_*_HEADER
	params    map[string]param
	nameOfAtt map[uint16]string
	maxOfAtt  map[uint16]string
}

func newParamSet(what, cli string, get, set uint8, header uint16, params map[string]param) *paramSet {
	p := &paramSet{what: what, cli: cli, get: get, set: set, hdrAttr: header, params: params,
		nameOfAtt: map[uint16]string{}, maxOfAtt: map[uint16]string{}}
	for name, pa := range params {
		p.nameOfAtt[pa.attr] = name
		if pa.max != 0 {
			p.maxOfAtt[pa.max] = name
		}
	}
	return p
}

// rings are the ring sizes `ethtool -G` sets, and their maximums.
var rings = newParamSet("ring", "ethtool -G", unix.ETHTOOL_MSG_RINGS_GET, unix.ETHTOOL_MSG_RINGS_SET, unix.ETHTOOL_A_RINGS_HEADER, map[string]param{
	"rx":         {attr: unix.ETHTOOL_A_RINGS_RX, max: unix.ETHTOOL_A_RINGS_RX_MAX},
	"rx-mini":    {attr: unix.ETHTOOL_A_RINGS_RX_MINI, max: unix.ETHTOOL_A_RINGS_RX_MINI_MAX},
	"rx-jumbo":   {attr: unix.ETHTOOL_A_RINGS_RX_JUMBO, max: unix.ETHTOOL_A_RINGS_RX_JUMBO_MAX},
	"tx":         {attr: unix.ETHTOOL_A_RINGS_TX, max: unix.ETHTOOL_A_RINGS_TX_MAX},
	"rx-buf-len": {attr: unix.ETHTOOL_A_RINGS_RX_BUF_LEN},
	"cqe-size":   {attr: unix.ETHTOOL_A_RINGS_CQE_SIZE},
})

// coalesce are the interrupt coalescing settings `ethtool -C` sets.
var coalesce = newParamSet("coalesce", "ethtool -C", unix.ETHTOOL_MSG_COALESCE_GET, unix.ETHTOOL_MSG_COALESCE_SET, unix.ETHTOOL_A_COALESCE_HEADER, map[string]param{
	"rx-usecs":          {attr: unix.ETHTOOL_A_COALESCE_RX_USECS},
	"rx-frames":         {attr: unix.ETHTOOL_A_COALESCE_RX_MAX_FRAMES},
	"rx-usecs-irq":      {attr: unix.ETHTOOL_A_COALESCE_RX_USECS_IRQ},
	"rx-frames-irq":     {attr: unix.ETHTOOL_A_COALESCE_RX_MAX_FRAMES_IRQ},
	"tx-usecs":          {attr: unix.ETHTOOL_A_COALESCE_TX_USECS},
	"tx-frames":         {attr: unix.ETHTOOL_A_COALESCE_TX_MAX_FRAMES},
	"tx-usecs-irq":      {attr: unix.ETHTOOL_A_COALESCE_TX_USECS_IRQ},
	"tx-frames-irq":     {attr: unix.ETHTOOL_A_COALESCE_TX_MAX_FRAMES_IRQ},
	"stats-block-usecs": {attr: unix.ETHTOOL_A_COALESCE_STATS_BLOCK_USECS},
	"adaptive-rx":       {attr: unix.ETHTOOL_A_COALESCE_USE_ADAPTIVE_RX, u8: true},
	"adaptive-tx":       {attr: unix.ETHTOOL_A_COALESCE_USE_ADAPTIVE_TX, u8: true},
	"pkt-rate-low":      {attr: unix.ETHTOOL_A_COALESCE_PKT_RATE_LOW},
	"rx-usecs-low":      {attr: unix.ETHTOOL_A_COALESCE_RX_USECS_LOW},
	"rx-frames-low":     {attr: unix.ETHTOOL_A_COALESCE_RX_MAX_FRAMES_LOW},
	"tx-usecs-low":      {attr: unix.ETHTOOL_A_COALESCE_TX_USECS_LOW},
	"tx-frames-low":     {attr: unix.ETHTOOL_A_COALESCE_TX_MAX_FRAMES_LOW},
	"pkt-rate-high":     {attr: unix.ETHTOOL_A_COALESCE_PKT_RATE_HIGH},
	"rx-usecs-high":     {attr: unix.ETHTOOL_A_COALESCE_RX_USECS_HIGH},
	"rx-frames-high":    {attr: unix.ETHTOOL_A_COALESCE_RX_MAX_FRAMES_HIGH},
	"tx-usecs-high":     {attr: unix.ETHTOOL_A_COALESCE_TX_USECS_HIGH},
	"tx-frames-high":    {attr: unix.ETHTOOL_A_COALESCE_TX_MAX_FRAMES_HIGH},
	"sample-interval":   {attr: unix.ETHTOOL_A_COALESCE_RATE_SAMPLE_INTERVAL},
	"cqe-mode-rx":       {attr: unix.ETHTOOL_A_COALESCE_USE_CQE_MODE_RX, u8: true},
	"cqe-mode-tx":       {attr: unix.ETHTOOL_A_COALESCE_USE_CQE_MODE_TX, u8: true},
})

// RingNames lists the ring sizes SetRings takes: the names `ethtool -G`
// takes.
func RingNames() []string { return slices.Sorted(maps.Keys(rings.params)) }

// CoalesceNames lists the settings SetCoalesce takes: the names
// `ethtool -C` takes.
func CoalesceNames() []string { return slices.Sorted(maps.Keys(coalesce.params)) }

// check validates the values to set: known names, flags 0 or 1.
func (p *paramSet) check(ifname string, want map[string]uint32) error {
	if len(want) == 0 {
		return fmt.Errorf("set %s of %s: no %s parameter given", p.what, ifname, p.what)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		pa, ok := p.params[name]
		if !ok {
			return fmt.Errorf("set %s of %s: %q is not a %s parameter (%s takes %s)", p.what, ifname, name, p.what, p.cli, strings.Join(slices.Sorted(maps.Keys(p.params)), ", "))
		}
		if pa.wide && want[name] > 255 {
			return fmt.Errorf("set %s of %s: %s is one byte: 0 to 255, not %d", p.what, ifname, name, want[name])
		}
		if pa.u8 && !pa.wide && want[name] > 1 {
			return fmt.Errorf("set %s of %s: %s is a flag: 0 or 1, not %d", p.what, ifname, name, want[name])
		}
	}
	return nil
}

// Netlink message layout: a genetlink header (command, version, two
// reserved bytes) and attributes, each a length, a type and its value
// padded to 4 bytes.
const (
	genlHdrLen  = 4
	nlaHdrLen   = 4
	nlaFNested  = 1 << 15
	nlaTypeMask = ^uint16(1<<15 | 1<<14)
)

func align4(n int) int { return (n + 3) &^ 3 }

// appendAttr appends an attribute to b.
func appendAttr(b []byte, typ uint16, value []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+len(value)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// header is the request header attribute naming the device.
func (p *paramSet) header(ifname string) []byte {
	dev := appendAttr(nil, unix.ETHTOOL_A_HEADER_DEV_NAME, append([]byte(ifname), 0))
	return appendAttr(nil, p.hdrAttr|nlaFNested, dev)
}

// getMsg is the payload (genetlink header and attributes) of the request
// that reads the parameters of ifname.
func (p *paramSet) getMsg(ifname string) []byte {
	return append([]byte{p.get, unix.ETHTOOL_GENL_VERSION, 0, 0}, p.header(ifname)...)
}

// setMsg is the payload of the request that sets want on ifname; want is
// checked already.
func (p *paramSet) setMsg(ifname string, want map[string]uint32) []byte {
	b := append([]byte{p.set, unix.ETHTOOL_GENL_VERSION, 0, 0}, p.header(ifname)...)
	for _, name := range slices.Sorted(maps.Keys(want)) {
		pa := p.params[name]
		if pa.u8 {
			b = appendAttr(b, pa.attr, []byte{byte(want[name])})
		} else {
			b = appendAttr(b, pa.attr, binary.NativeEndian.AppendUint32(nil, want[name]))
		}
	}
	return b
}

// parseReply reads a get reply's payload: the parameters the device has,
// and their maximums (ring sizes). Attributes this package does not name
// are left out.
func (p *paramSet) parseReply(b []byte) (cur, max map[string]uint32, err error) {
	if len(b) < genlHdrLen {
		return nil, nil, fmt.Errorf("%s reply of %d bytes is short of its header", p.what, len(b))
	}
	cur, max = map[string]uint32{}, map[string]uint32{}
	for b = b[genlHdrLen:]; len(b) > 0; {
		if len(b) < nlaHdrLen {
			return nil, nil, fmt.Errorf("%s reply: %d bytes left, short of an attribute", p.what, len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if n < nlaHdrLen || n > len(b) {
			return nil, nil, fmt.Errorf("%s reply: attribute %d has length %d of %d bytes left", p.what, typ, n, len(b))
		}
		v := b[nlaHdrLen:n]
		if name, ok := p.nameOfAtt[typ]; ok {
			if cur[name], err = attrValue(v, p.params[name].u8); err != nil {
				return nil, nil, fmt.Errorf("%s reply: %s: %w", p.what, name, err)
			}
		}
		if name, ok := p.maxOfAtt[typ]; ok {
			if max[name], err = attrValue(v, false); err != nil {
				return nil, nil, fmt.Errorf("%s reply: maximum %s: %w", p.what, name, err)
			}
		}
		b = b[min(align4(n), len(b)):]
	}
	return cur, max, nil
}

func attrValue(v []byte, u8 bool) (uint32, error) {
	switch {
	case u8 && len(v) == 1:
		return uint32(v[0]), nil
	case !u8 && len(v) == 4:
		return binary.NativeEndian.Uint32(v), nil
	}
	return 0, fmt.Errorf("value of %d bytes", len(v))
}
