package assertionkey_test

import (
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/test/fakeclock"
)

// keyLife is what a simulation saw of one key.
type keyLife struct {
	published, firstSigned, lastSigned, removed time.Time
}

// TestRotateOverlap runs the ring for ten rotation periods on a fake clock,
// looking at it whenever Rotate says to (and, to catch a wrong "next", every
// few minutes too), and checks the overlap at every step: a key is
// published at least Lead before it signs (except the first), always one key
// signs, and a key stays published at least Retain (>= MaxTTL) after its
// last signature.
func TestRotateOverlap(t *testing.T) {
	p := assertionkey.DefaultPolicy(2 * time.Hour)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := fakeclock.New(start)
	var ring assertionkey.Ring
	lives := map[string]*keyLife{}
	end := start.Add(10 * p.Rotation)
	const step = 3 * time.Minute
	wake := start
	for now := clk.Now(); now.Before(end); now = clk.Now() {
		if !now.Before(wake) {
			out, _, next, err := assertionkey.Rotate(ring, now, p)
			if err != nil {
				t.Fatal(err)
			}
			if !next.After(now) {
				t.Fatalf("at %s: next %s is not in the future", now, next)
			}
			ring, wake = out, next
		}
		present := map[string]bool{}
		for i := range ring.Keys {
			kid := ring.Keys[i].KID()
			present[kid] = true
			if lives[kid] == nil {
				lives[kid] = &keyLife{published: now}
			}
		}
		for kid, l := range lives {
			if !present[kid] && l.removed.IsZero() {
				l.removed = now
			}
		}
		signer, ok := ring.Signer(now)
		if !ok {
			t.Fatalf("at %s: no signing key", now)
		}
		l := lives[signer.KID()]
		if l.firstSigned.IsZero() {
			l.firstSigned = now
		}
		l.lastSigned = now
		// Jump to the next wake-up or a step, whichever comes first.
		clk.Set(earliest(now.Add(step), wake))
	}
	if len(lives) < 9 {
		t.Fatalf("got %d keys in 10 rotation periods, want at least 9", len(lives))
	}
	first := true
	for kid, l := range lives {
		if l.published.Equal(start) && first {
			first = false
			continue
		}
		if l.firstSigned.IsZero() {
			continue // published at the end, not signing yet
		}
		if got := l.firstSigned.Sub(l.published); got < p.Lead {
			t.Errorf("key %s signed %s after it was published, want at least %s", kid, got, p.Lead)
		}
		if !l.removed.IsZero() {
			if got := l.removed.Sub(l.lastSigned); got < assertionkey.MaxTTL {
				t.Errorf("key %s removed %s after its last signature, want at least %s", kid, got, assertionkey.MaxTTL)
			}
		}
	}
	if len(ring.Keys) > 3 {
		t.Fatalf("got %d keys published at the end, want old keys retired", len(ring.Keys))
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// TestRotateSteps pins the schedule: a successor appears Lead before the
// rotation, signs at the rotation, and the old key leaves Retain later.
func TestRotateSteps(t *testing.T) {
	p := assertionkey.DefaultPolicy(2 * time.Hour)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ring, changed, next, err := assertionkey.Rotate(assertionkey.Ring{}, t0, p)
	if err != nil || !changed || len(ring.Keys) != 1 {
		t.Fatalf("first rotate: got %d keys, changed %v, err %v; want one new key", len(ring.Keys), changed, err)
	}
	first := ring.Keys[0].KID()
	if want := t0.Add(p.Rotation - p.Lead); !next.Equal(want) {
		t.Fatalf("got next %s, want %s", next, want)
	}
	if _, changed, _, _ := assertionkey.Rotate(ring, t0.Add(time.Hour), p); changed {
		t.Fatal("ring changed before the rotation was due")
	}
	ring, _, next, _ = assertionkey.Rotate(ring, t0.Add(p.Rotation-p.Lead), p)
	if len(ring.Keys) != 2 {
		t.Fatalf("got %d keys at the publish time, want 2", len(ring.Keys))
	}
	if s, _ := ring.Signer(t0.Add(p.Rotation - time.Second)); s.KID() != first {
		t.Fatal("the successor signs before its SignFrom")
	}
	if s, _ := ring.Signer(t0.Add(p.Rotation)); s.KID() == first {
		t.Fatal("the old key still signs after the successor's SignFrom")
	}
	if want := t0.Add(p.Rotation); !next.Equal(want) {
		t.Fatalf("got next %s, want the successor's SignFrom %s", next, want)
	}
	ring, _, next, _ = assertionkey.Rotate(ring, t0.Add(p.Rotation), p)
	if len(ring.Keys) != 2 || !next.Equal(t0.Add(p.Rotation+p.Retain)) {
		t.Fatalf("got %d keys, next %s; want the old key kept until %s", len(ring.Keys), next, t0.Add(p.Rotation+p.Retain))
	}
	ring, _, _, _ = assertionkey.Rotate(ring, t0.Add(p.Rotation+p.Retain), p)
	if len(ring.Keys) != 1 || ring.Keys[0].KID() == first {
		t.Fatalf("got %d keys; want only the successor after the retention", len(ring.Keys))
	}
}

func TestParse(t *testing.T) {
	k, err := assertionkey.NewKey(time.Unix(0, 0), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	good := assertionkey.Ring{Keys: []assertionkey.Key{k}}
	b, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := assertionkey.Parse(b)
	if err != nil || len(r.Keys) != 1 || r.Keys[0].KID() != k.KID() {
		t.Fatalf("round trip: got %+v, %v", r, err)
	}
	pub := good.PublicJWKS()
	if len(pub.Keys) != 1 || !pub.Keys[0].IsPublic() {
		t.Fatal("PublicJWKS holds a private key")
	}
	dup := assertionkey.Ring{Keys: []assertionkey.Key{k, k}}
	db, _ := dup.Marshal()
	pubOnly := `{"keys":[{"jwk":` + mustJSON(t, pub.Keys[0]) + `}]}`
	for name, tc := range map[string]struct{ in, want string }{
		"empty":     {`{"keys":[]}`, "no key"},
		"garbage":   {`{`, "decode"},
		"duplicate": {string(db), "duplicate kid"},
		"public":    {pubOnly, "not a private"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := assertionkey.Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func mustJSON(t *testing.T, k interface{ MarshalJSON() ([]byte, error) }) string {
	t.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPolicyValidate(t *testing.T) {
	if err := assertionkey.DefaultPolicy(30 * time.Minute).Validate(); err == nil {
		t.Fatal("a 30m rotation was accepted")
	}
	if err := (assertionkey.Policy{Rotation: 2 * time.Hour, Lead: time.Minute, Retain: time.Minute}).Validate(); err == nil {
		t.Fatal("a retention below MaxTTL was accepted")
	}
}
