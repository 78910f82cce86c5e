package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestShutdownWaitsForChanges: Shutdown's quiesce waits for a
// state-changing call in flight (its undo must be journaled before
// Shutdown takes the journal) and refuses new ones, while read-only and
// waiting calls still pass.
func TestShutdownWaitsForChanges(t *testing.T) {
	s := &Server{}
	done, err := s.enter("/lnst.agent.v1.Agent/WriteValue")
	require.NoError(t, err)

	quiesced := make(chan struct{})
	go func() { s.quiesce(); close(quiesced) }()
	select {
	case <-quiesced:
		t.Fatal("quiesce returned while a WriteValue was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	done()
	select {
	case <-quiesced:
	case <-time.After(5 * time.Second):
		t.Fatal("quiesce did not return once the call ended")
	}

	_, err = s.enter("/lnst.agent.v1.Agent/CreateLink")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	for _, m := range []string{"Hello", "WaitJob", "RunJob", "ReadValue"} {
		done, err := s.enter("/lnst.agent.v1.Agent/" + m)
		require.NoError(t, err, m)
		done()
	}
}
