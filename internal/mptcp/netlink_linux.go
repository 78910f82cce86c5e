package mptcp

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

type rawData []byte

func (r rawData) Len() int          { return len(r) }
func (r rawData) Serialize() []byte { return r }

// request sends one request of the family and returns the replies.
func request(flags int, msg []byte) ([][]byte, error) {
	fam, err := netlink.GenlFamilyGet(Family)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("the kernel has no %s generic netlink family (MPTCP not built or not loaded): %w", Family, err)
		}
		return nil, fmt.Errorf("find the %s generic netlink family: %w", Family, err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), unix.NLM_F_REQUEST|flags)
	req.AddData(rawData(msg))
	return req.Execute(unix.NETLINK_GENERIC, 0)
}

// AddEndpoint adds e and returns it as the kernel made it (with its id).
func AddEndpoint(e Endpoint) (Endpoint, error) {
	msg, err := AddAddrMsg(e)
	if err != nil {
		return Endpoint{}, err
	}
	if _, err := request(unix.NLM_F_ACK, msg); err != nil {
		return Endpoint{}, fmt.Errorf("add mptcp endpoint %s: %w", e, err)
	}
	all, err := Endpoints()
	if err != nil {
		return Endpoint{}, fmt.Errorf("add mptcp endpoint %s: read it back: %w", e, err)
	}
	for _, got := range all {
		if got.Addr == e.Addr.Unmap() && got.Port == e.Port && (e.ID == 0 || got.ID == e.ID) {
			return got, nil
		}
	}
	return Endpoint{}, fmt.Errorf("add mptcp endpoint %s: added, but not among the endpoints read back", e)
}

// DelEndpoint deletes endpoint id.
func DelEndpoint(id uint8) error {
	msg, err := DelAddrMsg(id)
	if err != nil {
		return err
	}
	if _, err := request(unix.NLM_F_ACK, msg); err != nil {
		return fmt.Errorf("delete mptcp endpoint id %d: %w", id, err)
	}
	return nil
}

// Endpoints lists the endpoints.
func Endpoints() ([]Endpoint, error) {
	msgs, err := request(unix.NLM_F_DUMP, GetAddrDumpMsg())
	if err != nil {
		return nil, fmt.Errorf("list mptcp endpoints: %w", err)
	}
	var l []Endpoint
	for _, m := range msgs {
		e, err := ParseEndpoint(m)
		if err != nil {
			return nil, err
		}
		l = append(l, e)
	}
	return l, nil
}

// GetLimits reads the limits.
func GetLimits() (Limits, error) {
	msgs, err := request(0, GetLimitsMsg())
	if err != nil {
		return Limits{}, fmt.Errorf("read mptcp limits: %w", err)
	}
	if len(msgs) != 1 {
		return Limits{}, fmt.Errorf("read mptcp limits: %d replies, want 1", len(msgs))
	}
	return ParseLimits(msgs[0])
}

// SetLimits sets the limits and returns the previous ones.
func SetLimits(l Limits) (old Limits, err error) {
	msg, err := SetLimitsMsg(l)
	if err != nil {
		return Limits{}, err
	}
	if old, err = GetLimits(); err != nil {
		return Limits{}, err
	}
	if _, err := request(unix.NLM_F_ACK, msg); err != nil {
		return Limits{}, fmt.Errorf("set mptcp limits (subflows %d, add_addr_accepted %d): %w", l.Subflows, l.AddAddrAccepted, err)
	}
	return old, nil
}
