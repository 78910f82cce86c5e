package lnsttest

import (
	"testing"

	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/assert"
)

func TestDestructiveDenied(t *testing.T) {
	m1 := &pool.Host{Name: "m1", Line: 2, Allow: []string{"reboot", "kernel"}}
	m2 := &pool.Host{Name: "m2", Line: 5}
	assert.Equal(t, "", destructiveDenied(nil, []*pool.Host{m1, m2}, "lab.yaml"), "a recipe that declared nothing runs anywhere")
	assert.Equal(t, "", destructiveDenied([]string{"reboot", "kernel"}, []*pool.Host{m1}, "lab.yaml"))
	assert.Equal(t, `the recipe is destructive (reboot), and pool host m2 (lab.yaml:5) does not allow reboot: add "allow: [reboot]" to its entry to run it there`,
		destructiveDenied([]string{"reboot"}, []*pool.Host{m1, m2}, "lab.yaml"))
	assert.Equal(t, `the recipe is destructive (reboot, reset), and pool host m1 (lab.yaml:2) does not allow reset: add "allow: [reset]" to its entry to run it there`,
		destructiveDenied([]string{"reboot", "reset"}, []*pool.Host{m1}, "lab.yaml"))
}

func TestDestructiveDeclaredBySubtests(t *testing.T) {
	s := &session{destructive: map[string][]string{"TestReboot": {"reboot"}, "TestX/a": {"reset"}}}
	assert.Equal(t, []string{"reboot"}, s.declared("TestReboot"))
	assert.Equal(t, []string{"reboot"}, s.declared("TestReboot/h1=m1,h2=m2"), "ForEachMatch's subtests inherit the declaration")
	assert.Equal(t, []string{"reset"}, s.declared("TestX/a/b"))
	assert.Empty(t, s.declared("TestX"))
	assert.Empty(t, s.declared("TestRebootLater"), "a test whose name merely starts alike declares nothing")
}
