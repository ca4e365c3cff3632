package push

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
)

// TestPrime: what a new stream holds pending after the initial read.
func TestPrime(t *testing.T) {
	t.Parallel()
	cur := []byte("revision: 3\n")
	for _, tc := range []struct {
		name     string
		data     []byte
		haveRev  int64
		haveHash string
		pending  int64 // -1: nothing
		last     int64
	}{
		{"nothing held", cur, -1, "", 3, 3},
		{"holds it", cur, 3, config.Hash(cur), -1, 3},
		{"same revision, other hash", cur, 3, config.Hash([]byte("x")), 3, 3},
		{"other revision, same hash", cur, 2, config.Hash(cur), 3, 3},
		{"no bundle", nil, 3, config.Hash(cur), -1, -1},
		// The revision line is read, not the bundle: one that does not
		// parse goes out as revision 0 and the sidecar's parse rejects it.
		{"unreadable revision line", []byte("revision: [\n"), -1, "", 0, 0},
		{"no revision field", []byte("kind: ProxyConfig\n"), -1, "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewServer(Options{Auth: refuseAll{}, Read: func(context.Context, string) ([]byte, error) { return tc.data, nil }, Acks: NewAcks()})
			st := newStream("a", "p")
			if err := s.register(st); err != nil {
				t.Fatal(err)
			}
			if err := s.prime(t.Context(), st, tc.haveRev, tc.haveHash); err != nil {
				t.Fatal(err)
			}
			got := int64(-1)
			if m := st.take(); m != nil {
				got = m.revision
			}
			if got != tc.pending || st.last != tc.last {
				t.Fatalf("pending %d, last %d; want %d, %d", got, st.last, tc.pending, tc.last)
			}
		})
	}
}

// refuseAll is an Authenticator accepting nothing.
type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, string) (Identity, error) {
	return Identity{}, ErrInvalidCredential
}

func TestStreamAge(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for i := range 50 {
		age := streamAge(time.Hour, fmt.Sprintf("uid-%d", i))
		if age <= 54*time.Minute || age > time.Hour {
			t.Fatalf("age %v, want within (54m, 1h]", age)
		}
		seen[age] = true
	}
	if len(seen) < 40 {
		t.Errorf("%d distinct ages of 50 pods: not spread", len(seen))
	}
	if got := streamAge(5, "x"); got != 5 {
		t.Errorf("tiny age: got %v, want 5ns", got)
	}
}
