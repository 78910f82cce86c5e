package lnsttest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRebootOptions(t *testing.T) {
	o, err := rebootOptions(nil)
	assert.NoError(t, err)
	assert.Equal(t, DefaultRebootTimeout, o.timeout)
	o, err = rebootOptions([]RebootOpt{RebootTimeout(time.Minute)})
	assert.NoError(t, err)
	assert.Equal(t, time.Minute, o.timeout)
	for _, d := range []time.Duration{0, -time.Second} {
		_, err = rebootOptions([]RebootOpt{RebootTimeout(d)})
		assert.ErrorContains(t, err, "not a positive duration")
	}
}

func TestPoll(t *testing.T) {
	n := 0
	err := poll(time.Now().Add(10*time.Second), func(ctx context.Context) (bool, error) {
		_, ok := ctx.Deadline()
		assert.True(t, ok, "each check is bounded")
		n++
		return n == 3, nil
	})
	assert.NoError(t, err)
	assert.Equal(t, 3, n)

	start := time.Now()
	err = poll(time.Now().Add(300*time.Millisecond), func(context.Context) (bool, error) { return false, errors.New("agent down") })
	assert.EqualError(t, err, "agent down", "the last error")
	assert.Less(t, time.Since(start), 2*time.Second)
}
