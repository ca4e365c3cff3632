package fakeclock

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("got %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(start.Add(90 * time.Second)) {
		t.Fatalf("got %v after Advance, want %v", got, start.Add(90*time.Second))
	}
	c.Set(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("got %v after Set, want %v", got, start)
	}
}
