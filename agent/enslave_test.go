package agent

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelPort plays the kernel for one port: a bond or team master refuses
// a port that is up (EPERM, as bonding does), opens it on enslaving and
// closes it on release, as both drivers do. It records each call.
type kernelPort struct {
	link   *netlink.Dummy
	master string
	kind   string // of the master it is enslaved to or will be
	calls  []string
	// failMaster fails the next setMaster with this error.
	failMaster error
}

func newKernelPort(up bool, kind string) *kernelPort {
	p := &kernelPort{link: &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}, kind: kind}
	if up {
		p.link.Flags |= net.FlagUp
	}
	return p
}

func (p *kernelPort) up() bool { return p.link.Flags&unix.IFF_UP != 0 }

func (p *kernelPort) setUp(_ netlink.Link, up bool) error {
	p.calls = append(p.calls, map[bool]string{true: "up", false: "down"}[up])
	if up {
		p.link.Flags |= net.FlagUp
	} else {
		p.link.Flags &^= net.FlagUp
	}
	return nil
}

func (p *kernelPort) setMaster(_ netlink.Link, master string) error {
	p.calls = append(p.calls, fmt.Sprintf("master %q", master))
	if err := p.failMaster; err != nil {
		p.failMaster = nil
		return err
	}
	driver := takesDownPortsOnly(p.kind)
	switch {
	case master == "":
		if driver && p.master != "" {
			p.link.Flags &^= net.FlagUp
		}
	case driver && p.up():
		return unix.EPERM
	case driver:
		p.link.Flags |= net.FlagUp
	}
	p.master = master
	return nil
}

// TestSetMasterOfUpPort enslaves a port that is up to a bond and a team:
// it is taken down, enslaved and set up again, and the change's undo
// releases it and sets it up, as it was.
func TestSetMasterOfUpPort(t *testing.T) {
	for _, kind := range []string{"bond", "team"} {
		t.Run(kind, func(t *testing.T) {
			p := newKernelPort(true, kind)
			u := undo{Op: opSetLink, Link: "eth0"}
			set, downed, err := enslave(p, p.link, kind+"0", kind)
			require.NoError(t, err)
			assert.True(t, set)
			assert.True(t, downed)
			assert.Equal(t, []string{"down", `master "` + kind + `0"`, "up"}, p.calls)
			assert.Equal(t, kind+"0", p.master)
			assert.True(t, p.up())

			old := ""
			wasUp := true
			u.Master, u.Up = &old, &wasUp
			p.calls = nil
			require.NoError(t, (&host{}).undoSetLink(p, p.link, u))
			assert.Equal(t, []string{`master ""`, "up"}, p.calls)
			assert.Equal(t, "", p.master)
			assert.True(t, p.up(), "the port is up again, as before")
		})
	}
}

// TestSetMasterOfRecordsUndo checks the undo setMasterOf records: the
// old master, and up only when the port was taken down; when setting it
// up again fails, both, so that the journal keeps the partial change.
func TestSetMasterOfRecordsUndo(t *testing.T) {
	for _, c := range []struct {
		name   string
		up     bool
		kind   string
		calls  []string
		wantUp bool
	}{
		{"up port of bond", true, "bond", []string{"down", `master "m0"`, "up"}, true},
		{"up port of team", true, "team", []string{"down", `master "m0"`, "up"}, true},
		{"down port of bond", false, "bond", []string{`master "m0"`}, false},
		{"up port of bridge", true, "bridge", []string{`master "m0"`}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newKernelPort(c.up, c.kind)
			u := undo{Op: opSetLink}
			require.NoError(t, setMasterOf(p, p.link, "m0", c.kind, "br9", &u))
			assert.Equal(t, c.calls, p.calls)
			require.NotNil(t, u.Master)
			assert.Equal(t, "br9", *u.Master)
			if c.wantUp {
				require.NotNil(t, u.Up)
				assert.True(t, *u.Up)
			} else {
				assert.Nil(t, u.Up)
			}
		})
	}
	t.Run("set up again fails", func(t *testing.T) {
		p := &upFails{kernelPort: newKernelPort(true, "bond")}
		u := undo{Op: opSetLink}
		err := setMasterOf(p, p.link, "bond0", "bond", "", &u)
		require.ErrorContains(t, err, `enslave "eth0" to bond "bond0": set it up again after enslaving it (it was up): no carrier`)
		require.NotNil(t, u.Master)
		require.NotNil(t, u.Up)
		assert.True(t, *u.Up)
	})
}

// upFails is a kernelPort whose setting up fails.
type upFails struct{ *kernelPort }

func (p *upFails) setUp(l netlink.Link, up bool) error {
	if up {
		return errors.New("no carrier")
	}
	return p.kernelPort.setUp(l, up)
}

// TestSetMasterOfUpPortFails checks a bond that refuses the port even
// down: the port is up again, nothing is left to undo, and the error
// says what was done.
func TestSetMasterOfUpPortFails(t *testing.T) {
	p := newKernelPort(true, "bond")
	p.failMaster = errors.New("set master of \"eth0\" to \"bond0\" on h1: device or resource busy")
	set, downed, err := enslave(p, p.link, "bond0", "bond")
	require.Error(t, err)
	assert.False(t, set)
	assert.False(t, downed)
	assert.True(t, p.up())
	assert.Equal(t, []string{"down", `master "bond0"`, "up"}, p.calls)
	assert.True(t, strings.Contains(err.Error(), "device or resource busy (it was taken down to be enslaved, as the bond driver wants, and is up again)"), err.Error())

	// Without the taking down, the fake bond refuses the up port with the
	// kernel's bare EPERM.
	bare := newKernelPort(true, "bond")
	assert.ErrorIs(t, bare.setMaster(bare.link, "bond0"), unix.EPERM)
}
