package ethtool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// RSS (`ethtool -x`/`-X`): read through the ethtool netlink family
// (ETHTOOL_MSG_RSS_GET, Linux 6.3 and later), set through the SIOCETHTOOL
// ioctl (ETHTOOL_SRSSH), which every kernel has. Flow hashing
// (`ethtool -n/-N rx-flow-hash`) and ntuple filters (`ethtool -N flow-type
// ...`) go through the ioctl (ETHTOOL_GRXFH/SRXFH, SRXCLSRLINS/DEL).

// RSS attributes of ETHTOOL_MSG_RSS_GET (include/uapi/linux/ethtool_netlink
// _generated.h); x/sys does not name them.
const (
	rssAHeader    = 1
	rssAContext   = 2
	rssAHfunc     = 3
	rssAIndir     = 4
	rssAHkey      = 5
	rssAInputXfrm = 6
)

// Hash functions, by the names ethtool -X hfunc takes: bit i of the
// kernel's hfunc is hashFuncs[i] (ETH_RSS_HASH_TOP, _XOR, _CRC32).
var hashFuncs = []string{"toeplitz", "xor", "crc32"}

// RSS is a device's receive side scaling: its indirection table (entry i
// is the rx queue of hash bucket i), hash key and hash function.
type RSS struct {
	Indir []uint32
	Key   []byte
	// Hfunc is "toeplitz", "xor", "crc32" or "" (none reported).
	Hfunc string
	// xfrmKnown: the kernel reported input_xfrm, so it reads that byte
	// of struct ethtool_rxfh (6.8 and later) and must be told "no change".
	xfrmKnown bool
}

// parseRSS reads an ETHTOOL_MSG_RSS_GET reply payload.
func parseRSS(b []byte) (RSS, error) {
	var r RSS
	if len(b) < genlHdrLen {
		return r, fmt.Errorf("RSS reply of %d bytes is short of its header", len(b))
	}
	for b = b[genlHdrLen:]; len(b) > 0; {
		if len(b) < nlaHdrLen {
			return r, fmt.Errorf("RSS reply: %d bytes left, short of an attribute", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if n < nlaHdrLen || n > len(b) {
			return r, fmt.Errorf("RSS reply: attribute %d has length %d of %d bytes left", typ, n, len(b))
		}
		v := b[nlaHdrLen:n]
		switch typ {
		case rssAHfunc:
			if len(v) != 4 {
				return r, fmt.Errorf("RSS reply: hfunc of %d bytes", len(v))
			}
			r.Hfunc = hfuncName(binary.NativeEndian.Uint32(v))
		case rssAIndir:
			if len(v)%4 != 0 {
				return r, fmt.Errorf("RSS reply: indirection table of %d bytes is not whole u32s", len(v))
			}
			r.Indir = make([]uint32, len(v)/4)
			for i := range r.Indir {
				r.Indir[i] = binary.NativeEndian.Uint32(v[4*i:])
			}
		case rssAHkey:
			r.Key = slices.Clone(v)
		case rssAInputXfrm:
			r.xfrmKnown = true
		}
		b = b[min(align4(n), len(b)):]
	}
	return r, nil
}

func hfuncName(bits uint32) string {
	for i, name := range hashFuncs {
		if bits == 1<<i {
			return name
		}
	}
	if bits == 0 {
		return ""
	}
	return fmt.Sprintf("hfunc-%#x", bits)
}

func hfuncBits(name string) (uint8, error) {
	if name == "" {
		return 0, nil // ETH_RSS_HASH_NO_CHANGE
	}
	i := slices.Index(hashFuncs, name)
	if i < 0 {
		return 0, fmt.Errorf("hash function %q is none of %s", name, strings.Join(hashFuncs, ", "))
	}
	return 1 << i, nil
}

// rssGetMsg is the payload of the request that reads ifname's RSS.
func rssGetMsg(ifname string) []byte {
	dev := appendAttr(nil, unix.ETHTOOL_A_HEADER_DEV_NAME, append([]byte(ifname), 0))
	return append([]byte{unix.ETHTOOL_MSG_RSS_GET, unix.ETHTOOL_GENL_VERSION, 0, 0}, appendAttr(nil, rssAHeader|nlaFNested, dev)...)
}

// ReadRSS reads the RSS of device ifname: through ethtool netlink
// (RSS_GET, Linux 6.1 and later) in the calling thread's network
// namespace, or where the kernel has no RSS_GET, through fd (an AF_INET
// socket in the device's namespace) with the ETHTOOL_GRSSH ioctl. A device
// without RSS fails with an error that wraps unix.EOPNOTSUPP.
func ReadRSS(fd int, ifname string) (RSS, error) {
	msgs, err := request(0, rssGetMsg(ifname))
	return rssAnswer(ifname, msgs, err, func() (RSS, error) { return readRSSIoctl(fd, ifname) })
}

// rssAnswer reads the kernel's answer to an RSS_GET request of ifname:
// its reply, or on EOPNOTSUPP (the driver has no RSS, or the kernel no
// RSS_GET, as before 6.3) what the ioctl reads.
func rssAnswer(ifname string, msgs [][]byte, err error, viaIoctl func() (RSS, error)) (RSS, error) {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return viaIoctl()
	}
	if err != nil {
		return RSS{}, fmt.Errorf("read RSS of %s: %w", ifname, err)
	}
	if len(msgs) != 1 {
		return RSS{}, fmt.Errorf("read RSS of %s: %d replies, want 1", ifname, len(msgs))
	}
	r, err := parseRSS(msgs[0])
	if err != nil {
		return RSS{}, fmt.Errorf("read RSS of %s: %w", ifname, err)
	}
	if len(r.Indir) == 0 && len(r.Key) == 0 {
		return RSS{}, fmt.Errorf("read RSS of %s: the driver reports no indirection table or key (ethtool -x): %w", ifname, unix.EOPNOTSUPP)
	}
	return r, nil
}

// grsshMsg is the struct ethtool_rxfh of an ETHTOOL_GRSSH request with
// room for a table of indir entries and a key of key bytes (0 and 0 ask
// for the sizes).
func grsshMsg(indir, key uint32) []byte {
	b := make([]byte, rxfhLen+4*int(indir)+int(key))
	binary.NativeEndian.PutUint32(b[0:], unix.ETHTOOL_GRSSH)
	binary.NativeEndian.PutUint32(b[8:], indir)
	binary.NativeEndian.PutUint32(b[12:], key)
	return b
}

// parseGrssh reads a filled struct ethtool_rxfh.
func parseGrssh(b []byte) (RSS, error) {
	if len(b) < rxfhLen {
		return RSS{}, fmt.Errorf("ethtool_rxfh of %d bytes", len(b))
	}
	n, k := binary.NativeEndian.Uint32(b[8:]), binary.NativeEndian.Uint32(b[12:])
	if len(b) != rxfhLen+4*int(n)+int(k) {
		return RSS{}, fmt.Errorf("ethtool_rxfh of %d bytes for %d entries and a %d-byte key", len(b), n, k)
	}
	r := RSS{Hfunc: hfuncName(uint32(b[16])), Indir: make([]uint32, n)}
	for i := range r.Indir {
		r.Indir[i] = binary.NativeEndian.Uint32(b[rxfhLen+4*i:])
	}
	r.Key = slices.Clone(b[rxfhLen+4*int(n):])
	return r, nil
}

func readRSSIoctl(fd int, ifname string) (RSS, error) {
	sizes := grsshMsg(0, 0)
	if _, err := ioctl(fd, ifname, sizes); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return RSS{}, fmt.Errorf("read RSS of %s: not supported by its driver (ethtool -x): %w", ifname, err)
		}
		return RSS{}, fmt.Errorf("read RSS of %s: %w", ifname, err)
	}
	n, k := binary.NativeEndian.Uint32(sizes[8:]), binary.NativeEndian.Uint32(sizes[12:])
	if n == 0 && k == 0 {
		return RSS{}, fmt.Errorf("read RSS of %s: the driver reports no indirection table or key (ethtool -x): %w", ifname, unix.EOPNOTSUPP)
	}
	if n > 1<<16 || k > 1<<10 {
		return RSS{}, fmt.Errorf("read RSS of %s: a table of %d entries and a key of %d bytes is past belief", ifname, n, k)
	}
	b := grsshMsg(n, k)
	if _, err := ioctl(fd, ifname, b); err != nil {
		return RSS{}, fmt.Errorf("read RSS of %s: %w", ifname, err)
	}
	r, err := parseGrssh(b)
	if err != nil {
		return RSS{}, fmt.Errorf("read RSS of %s: %w", ifname, err)
	}
	return r, nil
}

// rxfhLen is sizeof(struct ethtool_rxfh) before its rss_config array.
const rxfhLen = 24

// RXH_XFRM_NO_CHANGE: input_xfrm left as it is.
const rxhXfrmNoChange = 0xff

// rxfhIndirNoChange (ETH_RXFH_INDIR_NO_CHANGE) as indir_size leaves the
// table; 0 resets it to the driver's default.
const rxfhIndirNoChange = 0xffffffff

// RSSChange is what SetRSS changes; zero values leave a setting alone.
type RSSChange struct {
	// Indir is the new table; its length must be the device's.
	Indir []uint32
	// DefaultIndir resets the table to the driver's default (ethtool -X
	// default), which a later change of channels may change again. With
	// Indir too, the table is reset and then, when the driver's default
	// is not Indir, set to Indir: what an undo does, so that the table is
	// as it was and the driver still owns it where it owned it before.
	DefaultIndir bool
	// Key is the new key; its length must be the device's.
	Key []byte
	// Hfunc is the new hash function by name.
	Hfunc string
}

// srsshMsg is the struct ethtool_rxfh of an ETHTOOL_SRSSH request.
func srsshMsg(c RSSChange, xfrmKnown bool) ([]byte, error) {
	hf, err := hfuncBits(c.Hfunc)
	if err != nil {
		return nil, err
	}
	indirSize := uint32(rxfhIndirNoChange)
	switch {
	case c.DefaultIndir && c.Indir != nil:
		return nil, errors.New("both a table and the default table given")
	case c.DefaultIndir:
		indirSize = 0
	case c.Indir != nil:
		indirSize = uint32(len(c.Indir))
	}
	b := make([]byte, rxfhLen, rxfhLen+4*len(c.Indir)+len(c.Key))
	binary.NativeEndian.PutUint32(b[0:], unix.ETHTOOL_SRSSH)
	binary.NativeEndian.PutUint32(b[8:], indirSize)
	binary.NativeEndian.PutUint32(b[12:], uint32(len(c.Key)))
	b[16] = hf
	if xfrmKnown {
		b[17] = rxhXfrmNoChange
	}
	for _, q := range c.Indir {
		b = binary.NativeEndian.AppendUint32(b, q)
	}
	return append(b, c.Key...), nil
}

// SetRSS changes the RSS of device ifname through fd (an AF_INET socket
// in its namespace) and returns what it was, as a change that sets it
// back. The table's entries must be below the device's rx queue count.
func SetRSS(fd int, ifname string, c RSSChange) (old RSSChange, err error) {
	cur, err := ReadRSS(fd, ifname)
	if err != nil {
		return RSSChange{}, err
	}
	if c.Indir != nil && len(c.Indir) != len(cur.Indir) {
		return RSSChange{}, fmt.Errorf("set RSS of %s: table of %d entries, the device's has %d", ifname, len(c.Indir), len(cur.Indir))
	}
	if c.Key != nil && len(c.Key) != len(cur.Key) {
		return RSSChange{}, fmt.Errorf("set RSS of %s: key of %d bytes, the device's has %d", ifname, len(c.Key), len(cur.Key))
	}
	first := c
	if c.DefaultIndir {
		first.Indir = nil
	}
	if err := srssh(fd, ifname, first, cur.xfrmKnown); err != nil {
		return RSSChange{}, err
	}
	if c.DefaultIndir && c.Indir != nil {
		now, err := ReadRSS(fd, ifname)
		if err != nil {
			return RSSChange{}, err
		}
		if !slices.Equal(now.Indir, c.Indir) {
			if err := srssh(fd, ifname, RSSChange{Indir: c.Indir}, cur.xfrmKnown); err != nil {
				return RSSChange{}, err
			}
		}
	}
	if c.Indir != nil || c.DefaultIndir {
		old.Indir = cur.Indir
		old.DefaultIndir = IsDefaultIndir(cur.Indir)
	}
	if c.Key != nil {
		old.Key = cur.Key
	}
	if c.Hfunc != "" && c.Hfunc != cur.Hfunc {
		old.Hfunc = cur.Hfunc
	}
	return old, nil
}

// srssh sends one ETHTOOL_SRSSH of c.
func srssh(fd int, ifname string, c RSSChange, xfrmKnown bool) error {
	msg, err := srsshMsg(c, xfrmKnown)
	if err != nil {
		return fmt.Errorf("set RSS of %s: %w", ifname, err)
	}
	if _, err := ioctl(fd, ifname, msg); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("set RSS of %s: not supported by its driver (ethtool -X): %w", ifname, err)
		}
		return fmt.Errorf("set RSS of %s: %w", ifname, err)
	}
	return nil
}

// IsDefaultIndir reports whether a table is the kernel's default spread
// (ethtool_rxfh_indir_default: bucket i to queue i mod n) over its n
// queues. Such a table is set back by resetting it to the driver's
// default first (see RSSChange.DefaultIndir), so that the driver may
// spread it again when channels change.
func IsDefaultIndir(indir []uint32) bool {
	if len(indir) == 0 {
		return false
	}
	n := slices.Max(indir) + 1
	for i, q := range indir {
		if q != uint32(i)%n {
			return false
		}
	}
	return true
}

// EqualIndir is the table of size entries spread over the first n
// queues, as ethtool -X equal n.
func EqualIndir(size, n int) []uint32 {
	t := make([]uint32, size)
	for i := range t {
		t[i] = uint32(i % n)
	}
	return t
}

// Flow types of rx-flow-hash and ntuple filters, by the names ethtool
// takes (include/uapi/linux/ethtool.h).
var flowTypes = map[string]uint32{
	"tcp4": 0x01, "udp4": 0x02, "sctp4": 0x03, "ah4": 0x09, "esp4": 0x0a,
	"tcp6": 0x05, "udp6": 0x06, "sctp6": 0x07, "ah6": 0x0b, "esp6": 0x0c,
	"ip4": 0x10, "ip6": 0x11, "ether": 0x12,
}

// Hash fields of rx-flow-hash, by the letters ethtool -N takes.
var hashFields = []struct {
	c   byte
	bit uint64
}{
	{'m', 1 << 1}, {'v', 1 << 2}, {'t', 1 << 3}, {'s', 1 << 4}, {'d', 1 << 5},
	{'f', 1 << 6}, {'n', 1 << 7}, {'r', 1 << 31},
}

func flowType(name string) (uint32, error) {
	ft, ok := flowTypes[name]
	if !ok {
		names := make([]string, 0, len(flowTypes))
		for n := range flowTypes {
			names = append(names, n)
		}
		slices.Sort(names)
		return 0, fmt.Errorf("flow type %q is none of %s", name, strings.Join(names, ", "))
	}
	return ft, nil
}

// parseHashFields reads ethtool -N's letters ("sdfn") into RXH_* bits.
func parseHashFields(s string) (uint64, error) {
	var bits uint64
	for i := range len(s) {
		j := slices.IndexFunc(hashFields, func(f struct {
			c   byte
			bit uint64
		}) bool {
			return f.c == s[i]
		})
		if j < 0 {
			return 0, fmt.Errorf("hash fields %q: %q is none of m, v, t, s, d, f, n, r", s, s[i])
		}
		bits |= hashFields[j].bit
	}
	return bits, nil
}

// formatHashFields writes RXH_* bits as ethtool -N's letters, in its
// order.
func formatHashFields(bits uint64) string {
	var b []byte
	for _, f := range hashFields {
		if bits&f.bit != 0 {
			b = append(b, f.c)
		}
	}
	return string(b)
}

// rxnfcLen is sizeof(struct ethtool_rxnfc) on 64-bit Linux: cmd,
// flow_type, data (u64), the 168-byte struct ethtool_rx_flow_spec,
// rule_cnt, padded to 8.
const rxnfcLen = 192

// Offsets in struct ethtool_rxnfc and its ethtool_rx_flow_spec fs (at 16).
const (
	rxnfcData     = 8
	rxnfcFs       = 16
	fsHU          = rxnfcFs + 4    // h_u: the values to match
	fsMU          = fsHU + 52 + 20 // m_u: their masks, after h_ext
	fsRingCookie  = rxnfcFs + 152
	fsLocation    = rxnfcFs + 160
	rxClsLocAny   = 0xffffffff
	rxClsFlowDisc = ^uint64(0)
)

// rxfhMsg is the struct ethtool_rxnfc of a GRXFH or SRXFH request.
func rxfhMsg(cmd uint32, ft uint32, fields uint64) []byte {
	b := make([]byte, rxnfcLen)
	binary.NativeEndian.PutUint32(b[0:], cmd)
	binary.NativeEndian.PutUint32(b[4:], ft)
	binary.NativeEndian.PutUint64(b[rxnfcData:], fields)
	return b
}

// FlowHash reads which fields device ifname hashes packets of a flow
// type on ("tcp4", ...), as ethtool -n rx-flow-hash: letters of ethtool
// -N ("sdfn").
func FlowHash(fd int, ifname, flow string) (string, error) {
	ft, err := flowType(flow)
	if err != nil {
		return "", fmt.Errorf("read rx-flow-hash of %s: %w", ifname, err)
	}
	b := rxfhMsg(unix.ETHTOOL_GRXFH, ft, 0)
	if _, err := ioctl(fd, ifname, b); err != nil {
		return "", rxnfcErr("read rx-flow-hash "+flow, ifname, err)
	}
	return formatHashFields(binary.NativeEndian.Uint64(b[rxnfcData:])), nil
}

// SetFlowHash sets the fields device ifname hashes packets of a flow
// type on and returns the old ones.
func SetFlowHash(fd int, ifname, flow, fields string) (old string, err error) {
	ft, err := flowType(flow)
	if err != nil {
		return "", fmt.Errorf("set rx-flow-hash of %s: %w", ifname, err)
	}
	bits, err := parseHashFields(fields)
	if err != nil {
		return "", fmt.Errorf("set rx-flow-hash of %s: %w", ifname, err)
	}
	if old, err = FlowHash(fd, ifname, flow); err != nil {
		return "", err
	}
	if _, err := ioctl(fd, ifname, rxfhMsg(unix.ETHTOOL_SRXFH, ft, bits)); err != nil {
		return "", rxnfcErr("set rx-flow-hash "+flow+" "+fields, ifname, err)
	}
	return old, nil
}

func rxnfcErr(what, ifname string, err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%s of %s: not supported by its driver (ethtool -N): %w", what, ifname, err)
	}
	return fmt.Errorf("%s of %s: %w", what, ifname, err)
}

// Ntuple is an ntuple filter (ethtool -N flow-type ...): packets of a
// TCP or UDP flow over IPv4 matching the addresses and ports given (the
// zero value matches any) go to rx queue Queue, or are dropped when
// Drop.
type Ntuple struct {
	Flow             string // "tcp4" or "udp4"
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Queue            uint64
	Drop             bool
}

// ntupleMsg is the struct ethtool_rxnfc of an SRXCLSRLINS request.
func ntupleMsg(n Ntuple) ([]byte, error) {
	if n.Flow != "tcp4" && n.Flow != "udp4" {
		return nil, fmt.Errorf("ntuple flow type %q: tcp4 or udp4", n.Flow)
	}
	for _, a := range []netip.Addr{n.Src, n.Dst} {
		if a.IsValid() && !a.Is4() {
			return nil, fmt.Errorf("ntuple %s: address %s is not IPv4", n.Flow, a)
		}
	}
	ft := flowTypes[n.Flow]
	b := make([]byte, rxnfcLen)
	binary.NativeEndian.PutUint32(b[0:], unix.ETHTOOL_SRXCLSRLINS)
	binary.NativeEndian.PutUint32(b[rxnfcFs:], ft)
	// struct ethtool_tcpip4_spec: ip4src, ip4dst (be32), psrc, pdst
	// (be16), tos; its mask in m_u the same way.
	put := func(off int, a netip.Addr) {
		if a.IsValid() {
			v := a.As4()
			copy(b[fsHU+off:], v[:])
			copy(b[fsMU+off:], []byte{0xff, 0xff, 0xff, 0xff})
		}
	}
	put(0, n.Src)
	put(4, n.Dst)
	if n.SrcPort != 0 {
		binary.BigEndian.PutUint16(b[fsHU+8:], n.SrcPort)
		binary.BigEndian.PutUint16(b[fsMU+8:], 0xffff)
	}
	if n.DstPort != 0 {
		binary.BigEndian.PutUint16(b[fsHU+10:], n.DstPort)
		binary.BigEndian.PutUint16(b[fsMU+10:], 0xffff)
	}
	cookie := n.Queue
	if n.Drop {
		cookie = rxClsFlowDisc
	}
	binary.NativeEndian.PutUint64(b[fsRingCookie:], cookie)
	binary.NativeEndian.PutUint32(b[fsLocation:], rxClsLocAny)
	return b, nil
}

// AddNtuple adds an ntuple filter to device ifname and returns the
// location the driver gave it: DelNtuple(fd, ifname, loc) removes it.
func AddNtuple(fd int, ifname string, n Ntuple) (loc uint32, err error) {
	b, err := ntupleMsg(n)
	if err != nil {
		return 0, fmt.Errorf("add ntuple filter to %s: %w", ifname, err)
	}
	if _, err := ioctl(fd, ifname, b); err != nil {
		return 0, rxnfcErr("add ntuple filter", ifname, err)
	}
	return binary.NativeEndian.Uint32(b[fsLocation:]), nil
}

// delNtupleMsg is the struct ethtool_rxnfc of an SRXCLSRLDEL request.
func delNtupleMsg(loc uint32) []byte {
	b := make([]byte, rxnfcLen)
	binary.NativeEndian.PutUint32(b[0:], unix.ETHTOOL_SRXCLSRLDEL)
	binary.NativeEndian.PutUint32(b[fsLocation:], loc)
	return b
}

// DelNtuple removes the ntuple filter at loc from device ifname.
func DelNtuple(fd int, ifname string, loc uint32) error {
	if _, err := ioctl(fd, ifname, delNtupleMsg(loc)); err != nil {
		return rxnfcErr(fmt.Sprintf("delete ntuple filter %d", loc), ifname, err)
	}
	return nil
}
