package identity

import (
	"sync"
	"testing"
)

func TestDerivedFirstStoreWins(t *testing.T) {
	t.Parallel()
	id := &Identity{Subject: "alice"}
	if got := id.Derived.Load(id); got != nil {
		t.Fatalf("got %v from an empty slot, want nil", got)
	}
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Go(func() { got[i] = id.Derived.LoadOrStore(id, i) })
	}
	wg.Wait()
	want := id.Derived.Load(id)
	for i, g := range got {
		if g != want {
			t.Errorf("goroutine %d: got %v, want the stored %v", i, g, want)
		}
	}
}

func TestDerivedIgnoresOtherOwner(t *testing.T) {
	t.Parallel()
	a, b := &Identity{Subject: "a"}, &Identity{Subject: "b"}
	a.Derived.LoadOrStore(a, "a")
	if got := a.Derived.Load(b); got != nil {
		t.Errorf("got %v for another owner, want nil", got)
	}
	if got := a.Derived.LoadOrStore(b, "b"); got != "b" {
		t.Errorf("got %v, want the caller's own value, not stored", got)
	}
	if got := a.Derived.Load(a); got != "a" {
		t.Errorf("got %v, want a", got)
	}
}
