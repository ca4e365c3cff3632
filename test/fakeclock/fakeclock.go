// Package fakeclock is a manually advanced clock for tests, safe for
// concurrent use. Code under test takes a `func() time.Time`; tests pass
// Clock.Now.
package fakeclock

import (
	"sync/atomic"
	"time"
)

// Clock holds a settable instant.
type Clock struct{ ns atomic.Int64 }

// New returns a clock set to start.
func New(start time.Time) *Clock {
	c := &Clock{}
	c.Set(start)
	return c
}

// Now returns the clock's instant (UTC).
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }
