// Package poll waits for a condition with a deadline: it calls the
// condition at a fixed interval until it holds, says it never will, the
// context ends or the time is up. Tests use it instead of sleeping.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Every is the interval between two calls of a condition.
const Every = 20 * time.Millisecond

// permanent marks an error that Until must not retry.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Until stops at once and returns it.
func Permanent(err error) error { return permanent{err} }

// Until calls cond every Every until it returns nil, returns an error made
// with Permanent, ctx ends, or timeout passes; it then returns cond's last
// error.
func Until(ctx context.Context, timeout time.Duration, cond func() error) error {
	return UntilEvery(ctx, timeout, Every, cond)
}

// UntilEvery is Until with every as the interval: for a condition that
// costs what it asks (a listing of thousands of agents) too much to ask
// it fifty times a second.
func UntilEvery(ctx context.Context, timeout, every time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := cond()
		var p permanent
		switch {
		case err == nil:
			return nil
		case errors.As(err, &p):
			return p.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// True is Until for a condition without an error: it fails with "not
// within timeout: what" while cond is false.
func True(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	return Until(ctx, timeout, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	})
}
