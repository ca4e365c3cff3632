// Package wait polls a condition until it holds, for tests of code that
// works asynchronously (controllers, reloads, refreshers). It is the one
// polling loop of the tests: a test waits for a positive event, never for a
// fixed time.
//
// Polling starts fast (every millisecond) and backs off to every 50ms, so a
// condition that holds soon is seen soon and a slow one does not load a
// shared machine.
package wait

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// DefaultTimeout bounds a wait given a zero timeout. It is generous: the
// machines tests run on are shared, and -race slows everything down.
const DefaultTimeout = 30 * time.Second

// Polling intervals: the first, and the cap of the doubling.
const (
	firstInterval = time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

// ErrTimeout is what Until's error wraps when the timeout passed.
var ErrTimeout = errors.New("timed out")

// errNotYet is the last error of a boolean condition that never held.
var errNotYet = errors.New("condition false")

// For polls cond until it returns true. After timeout (DefaultTimeout when
// zero) it fails t with "timed out after <timeout> waiting for <what>",
// what being format and args. It returns how long the wait took.
func For(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) time.Duration {
	t.Helper()
	start := time.Now()
	err := Until(t.Context(), timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("%s waiting for %s", headline(err), fmt.Sprintf(format, args...))
	}
	return time.Since(start)
}

// ForNil polls cond until it returns nil. After timeout (DefaultTimeout
// when zero) it fails t with "timed out after <timeout> waiting for <what>:
// <cond's last error>", so the failure says what was waited for and what
// was seen instead. It returns how long the wait took.
func ForNil(t testing.TB, timeout time.Duration, cond func() error, format string, args ...any) time.Duration {
	t.Helper()
	start := time.Now()
	if err := Until(t.Context(), timeout, cond); err != nil {
		t.Fatalf("%s waiting for %s: %v", headline(err), fmt.Sprintf(format, args...), cause(err))
	}
	return time.Since(start)
}

// Until polls cond until it returns nil, for code without a *testing.T
// (TestMain). It gives up after timeout (DefaultTimeout when zero) with an
// error wrapping ErrTimeout and cond's last error, or when ctx ends.
func Until(ctx context.Context, timeout time.Duration, cond func() error) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &lastError{head: fmt.Errorf("%w after %s", ErrTimeout, timeout), err: err}
		}
		pause := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			pause.Stop()
			return &lastError{head: fmt.Errorf("gave up: %w", context.Cause(ctx)), err: err}
		case <-pause.C:
		}
		interval = min(2*interval, maxInterval)
	}
}

// lastError is why a wait ended, with the condition's last error.
type lastError struct {
	head error // timed out, or the context's cause
	err  error
}

func (e *lastError) Error() string { return e.head.Error() + ": last: " + e.err.Error() }

func (e *lastError) Unwrap() []error { return []error{e.head, e.err} }

// cause is the condition's last error.
func cause(err error) error {
	var last *lastError
	if errors.As(err, &last) {
		return last.err
	}
	return err
}

// headline is the reason a wait ended, without the condition's error.
func headline(err error) string {
	var last *lastError
	if errors.As(err, &last) {
		return last.head.Error()
	}
	return err.Error()
}
