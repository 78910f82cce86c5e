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
