package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIRQPolicies: the CPU list each policy gives queue q.
func TestIRQPolicies(t *testing.T) {
	online := []int{0, 1, 2, 3}
	per := IRQPerQueue(2, 3)
	assert.Equal(t, []string{"2", "3", "2", "3"}, []string{per.of(0, per.cpus), per.of(1, per.cpus), per.of(2, per.cpus), per.of(3, per.cpus)})
	all := IRQPerQueue()
	assert.Nil(t, all.cpus, "no CPUs given: the host's online CPUs, filled in by PinIRQsAcross")
	assert.Equal(t, "3", all.of(7, online), "queue 7 of 4 CPUs")
	one := IRQAllOn(1)
	assert.Equal(t, "1", one.of(0, one.cpus))
	assert.Equal(t, "1", one.of(5, one.cpus))
	spread := IRQSpread(0, 1, 2, 5)
	assert.Equal(t, "0-2,5", spread.of(3, spread.cpus))
	assert.Equal(t, "0:1 12:0-3", formatAffinity(map[int]string{12: "0-3", 0: "1"}))
}
