package lnsttest

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLab checks the lab kind hosts and matches report, a namespace
// handle's being its host's.
func TestLab(t *testing.T) {
	vm := &Host{s: &session{}, vm: &vmHost{}}
	assert.Equal(t, "vm", vm.Lab())
	assert.Equal(t, "vm", (&Host{s: vm.s, outer: vm}).Lab(), "a namespace of a VM")
	assert.Equal(t, "pool", (&Host{s: &session{pool: &staticPool{}}}).Lab())
	if os.Geteuid() == 0 && cfg.lab != "rootless" {
		assert.Equal(t, "netns", (&Host{s: &session{}}).Lab())
	}
	assert.Equal(t, "vm", (&Match{hosts: map[string]*Host{"h1": vm}}).Lab())
}

// TestEmulated: VM lab guests and pool machines marked emulated (a
// libvirt pool's TCG guests) are emulated, with their namespaces; other
// pool machines and lab hosts are not.
func TestEmulated(t *testing.T) {
	vm := &Host{s: &session{}, vm: &vmHost{}}
	tcg := &Host{s: &session{pool: &staticPool{}}, emulated: true}
	assert.True(t, vm.Emulated())
	assert.True(t, tcg.Emulated())
	assert.True(t, (&Host{s: tcg.s, outer: tcg}).Emulated(), "a namespace of an emulated machine")
	assert.False(t, (&Host{s: &session{pool: &staticPool{}}}).Emulated())
	assert.False(t, (&Host{s: &session{}}).Emulated())
}
