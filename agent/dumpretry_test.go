package agent

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/vishvananda/netlink"
)

func TestRetryDump(t *testing.T) {
	other := errors.New("permission denied")
	for _, tc := range []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{"first dump whole", []error{nil}, 1, nil},
		{"interrupted twice, then whole", []error{netlink.ErrDumpInterrupted, netlink.ErrDumpInterrupted, nil}, 3, nil},
		{"another error is not retried", []error{other, nil}, 1, other},
		{"interrupted every time", []error{netlink.ErrDumpInterrupted, netlink.ErrDumpInterrupted, netlink.ErrDumpInterrupted,
			netlink.ErrDumpInterrupted, netlink.ErrDumpInterrupted, nil}, dumpTries, netlink.ErrDumpInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			v, err := retryDump(func() (int, error) {
				e := tc.errs[calls]
				calls++
				return calls, e
			})
			assert.Equal(t, tc.wantCalls, calls, "dumps made")
			assert.Equal(t, calls, v, "the last dump's result is returned")
			assert.ErrorIs(t, err, tc.wantErr)
			if tc.wantErr == nil {
				assert.NoError(t, err)
			}
		})
	}
}
