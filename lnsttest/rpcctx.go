package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Calls to agents end before the test binary's deadline (-test.timeout),
// so that the test fails with a message naming the call instead of the
// binary panicking with every goroutine's stack: a call made while the
// test runs ends rpcGrace before the deadline, one made by its cleanup
// (an undo) cleanupGrace before it, leaving the undo the time between.
// Neither takes more than a quarter of the time left, so a short
// -test.timeout leaves the recipe most of its time.
const (
	rpcGrace     = 3 * time.Second
	cleanupGrace = 500 * time.Millisecond
)

// errNearDeadline is the cause of a call ended because the test binary's
// deadline is near.
var errNearDeadline = errors.New("the test binary's deadline (-test.timeout) is near")

// deadliner is what of *testing.T tells the test binary's deadline.
type deadliner interface {
	Deadline() (time.Time, bool)
}

// rpcCtx is the context of a call lnsttest makes to an agent for t. While
// t runs it is t.Context(), ended rpcGrace before the test binary's
// deadline. In t's cleanup, once t.Context() has ended, the undo must
// still reach the agent: then only the deadline (less cleanupGrace)
// bounds the call.
func rpcCtx(t testing.TB) context.Context {
	ctx := t.Context()
	grace := rpcGrace
	if ctx.Err() != nil {
		ctx, grace = context.WithoutCancel(ctx), cleanupGrace
	}
	return withTestDeadline(t, ctx, grace)
}

// waitCtx is the context of a wait that must outlive t.Context() (the
// wait for a background job, which ends at t's cleanup): it ends only
// rpcGrace before the test binary's deadline.
func waitCtx(t testing.TB) context.Context {
	return withTestDeadline(t, context.WithoutCancel(t.Context()), rpcGrace)
}

func withTestDeadline(t testing.TB, ctx context.Context, grace time.Duration) context.Context {
	dt, ok := t.(deadliner)
	if !ok {
		return ctx
	}
	d, ok := dt.Deadline()
	if !ok {
		return ctx
	}
	// The cancel function is not needed: the context ends at the deadline
	// anyway, and a child of t.Context() when t ends.
	grace = min(grace, time.Until(d)/4)
	ctx, cancel := context.WithDeadlineCause(ctx, d.Add(-grace), errNearDeadline)
	_ = cancel
	return context.WithValue(ctx, nearDeadlineKey{}, true)
}

// nearDeadlineKey marks a context that ends before the test binary's
// deadline.
type nearDeadlineKey struct{}

// callErr adds to err, from a call made with ctx, why ctx ended when it
// was the test binary's deadline coming near. The agent sees the call's
// deadline too, and may end the call a moment before ctx ends here.
func callErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	near := errors.Is(context.Cause(ctx), errNearDeadline)
	if d, ok := ctx.Deadline(); ok && ctx.Value(nearDeadlineKey{}) != nil && status.Code(err) == codes.DeadlineExceeded {
		near = near || time.Until(d) < time.Second
	}
	if near {
		return fmt.Errorf("%w (%v)", err, errNearDeadline)
	}
	return err
}
