package ethtool

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Ring sizes and coalescing go through the ethtool generic netlink family
// (ETHTOOL_MSG_RINGS_GET/SET, ETHTOOL_MSG_COALESCE_GET/SET, Linux 5.6 and
// later), in the calling thread's network namespace.

// Rings reads the ring sizes of device ifname and their maximums, by the
// names `ethtool -G` takes ("rx", "tx", ...); sizes the device does not
// have are absent. A device without ring settings fails with an error
// that wraps unix.EOPNOTSUPP.
func Rings(ifname string) (cur, max map[string]uint32, err error) { return rings.read(ifname) }

// SetRings sets ring sizes of device ifname and returns the previous
// sizes of those it changed: SetRings(ifname, old) takes it back.
func SetRings(ifname string, want map[string]uint32) (old map[string]uint32, err error) {
	return rings.change(ifname, want)
}

// Coalesce reads the interrupt coalescing settings of device ifname, by
// the names `ethtool -C` takes ("rx-usecs", "adaptive-rx", ...; a flag is
// 0 or 1): those the driver has. A device without coalescing settings
// fails with an error that wraps unix.EOPNOTSUPP.
func Coalesce(ifname string) (map[string]uint32, error) {
	cur, _, err := coalesce.read(ifname)
	return cur, err
}

// SetCoalesce sets interrupt coalescing settings of device ifname and
// returns the previous values of those it changed: SetCoalesce(ifname,
// old) takes it back.
func SetCoalesce(ifname string, want map[string]uint32) (old map[string]uint32, err error) {
	return coalesce.change(ifname, want)
}

// rawData is a request payload made here.
type rawData []byte

func (r rawData) Len() int          { return len(r) }
func (r rawData) Serialize() []byte { return r }

// familyID is the ethtool generic netlink family's id once found (0
// before). The kernel gives a family one id in every network namespace,
// so a change (a read, then a set) and later calls need not ask again.
var familyID atomic.Uint32

// family returns the id of the ethtool generic netlink family.
func family() (uint16, error) {
	if id := familyID.Load(); id != 0 {
		return uint16(id), nil
	}
	fam, err := netlink.GenlFamilyGet(unix.ETHTOOL_GENL_NAME)
	if err != nil {
		return 0, err
	}
	familyID.Store(uint32(fam.ID))
	return fam.ID, nil
}

// request sends one ethtool request and returns the reply payloads.
func request(flags int, payload []byte) ([][]byte, error) {
	id, err := family()
	if err != nil {
		return nil, fmt.Errorf("find the ethtool netlink family: %w", err)
	}
	req := nl.NewNetlinkRequest(int(id), unix.NLM_F_REQUEST|flags)
	req.AddData(rawData(payload))
	return req.Execute(unix.NETLINK_GENERIC, 0)
}

// read gets the device's parameters and maximums.
func (p *paramSet) read(ifname string) (cur, max map[string]uint32, err error) {
	msgs, err := request(0, p.getMsg(ifname))
	return p.answer(ifname, msgs, err)
}

// answer reads the kernel's answer to a get request of ifname: its reply
// payloads, or the error it answered with (an EOPNOTSUPP is the driver's
// "not supported").
func (p *paramSet) answer(ifname string, msgs [][]byte, err error) (cur, max map[string]uint32, _ error) {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil, fmt.Errorf("read %s settings of %s: not supported by its driver (%s): %w", p.what, ifname, p.cli, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s settings of %s: %w", p.what, ifname, err)
	}
	if len(msgs) != 1 {
		return nil, nil, fmt.Errorf("read %s settings of %s: %d replies, want 1", p.what, ifname, len(msgs))
	}
	cur, max, err = p.parseReply(msgs[0])
	if err != nil {
		return nil, nil, fmt.Errorf("read %s settings of %s: %w", p.what, ifname, err)
	}
	return cur, max, nil
}

// change sets the values of want that differ and returns what they were.
func (p *paramSet) change(ifname string, want map[string]uint32) (map[string]uint32, error) {
	if err := p.check(ifname, want); err != nil {
		return nil, err
	}
	cur, max, err := p.read(ifname)
	if err != nil {
		return nil, err
	}
	old, set := map[string]uint32{}, map[string]uint32{}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		v, ok := cur[name]
		if !ok {
			return nil, fmt.Errorf("set %s of %s: the device has no %s setting %s (it has %s): %w",
				p.what, ifname, p.what, name, strings.Join(slices.Sorted(maps.Keys(cur)), ", "), unix.EOPNOTSUPP)
		}
		if m, ok := max[name]; ok && want[name] > m {
			return nil, fmt.Errorf("set %s of %s: %s %d is above the device's maximum %d", p.what, ifname, name, want[name], m)
		}
		if v != want[name] {
			old[name], set[name] = v, want[name]
		}
	}
	if len(set) == 0 {
		return old, nil
	}
	if _, err := request(unix.NLM_F_ACK, p.setMsg(ifname, set)); err != nil {
		return nil, fmt.Errorf("set %s %s of %s: %w", p.what, Format(set), ifname, err)
	}
	return old, nil
}
