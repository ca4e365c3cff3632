package wait

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	For(t, 0, func() bool { return n.Add(1) == 5 }, "the fifth poll")
	if got := n.Load(); got != 5 {
		t.Fatalf("got %d polls, want 5", got)
	}
}

func TestUntilTimesOutWithTheLastError(t *testing.T) {
	t.Parallel()
	err := Until(context.Background(), 20*time.Millisecond, func() error { return errors.New("2 keys, want 3") })
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "2 keys, want 3") || !strings.Contains(err.Error(), "20ms") {
		t.Fatalf("got %v, want a timeout after 20ms naming the last state", err)
	}
}

func TestUntilEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := Until(ctx, time.Hour, func() error { return errors.New("not yet") })
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) || time.Since(start) > time.Second {
		t.Fatalf("got %v after %v, want the context's end at once", err, time.Since(start))
	}
}

// fatalTB records the failure of a wait instead of failing the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = strings.TrimSpace(fmt.Sprintf(format, args...))
}

func TestFailureSaysWhatWasAwaited(t *testing.T) {
	t.Parallel()
	tb := &fatalTB{TB: t}
	ForNil(tb, 5*time.Millisecond, func() error { return errors.New("status Pending") }, "policy %s ready", "orders")
	if want := "timed out after 5ms waiting for policy orders ready: status Pending"; tb.msg != want {
		t.Fatalf("got failure %q, want %q", tb.msg, want)
	}
	For(tb, 5*time.Millisecond, func() bool { return false }, "%d keys", 2)
	if want := "timed out after 5ms waiting for 2 keys"; tb.msg != want {
		t.Fatalf("got failure %q, want %q", tb.msg, want)
	}
}
