package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

const (
	issA = "https://a.example.com/"
	issB = "https://b.example.com/"
)

var revNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func revEntry(claim, value, issuer string, until time.Time) config.Revocation {
	return config.Revocation{Claim: claim, Value: value, Issuer: issuer, ExpiresAt: until.Format(time.RFC3339)}
}

// revPolicy trusts issuers a and b (the config's issuers are revIssuers).
func revPolicy(rs ...config.Revocation) *config.Policy {
	return &config.Policy{Name: "p", Authentication: config.Authentication{Issuers: []string{"a", "b"}}, Revocations: rs}
}

var revIssuers = []config.Issuer{{Name: "a", IssuerURL: issA}, {Name: "b", IssuerURL: issB}, {Name: "c", IssuerURL: "https://c.example.com/"}}

func jwtID(iss, sub string, claims map[string]any) *identity.Identity {
	if claims == nil {
		claims = map[string]any{}
	}
	claims["sub"] = sub
	return &identity.Identity{Kind: identity.KindJWT, Issuer: iss, Subject: sub, Claims: claims}
}

func TestRevocationsMatch(t *testing.T) {
	t.Parallel()
	later, sooner := revNow.Add(time.Hour), revNow.Add(time.Minute)
	tests := []struct {
		name    string
		entries []config.Revocation
		id      *identity.Identity
		at      time.Time
		want    bool
	}{
		{"jti", []config.Revocation{revEntry("jti", "t1", "", later)}, jwtID(issA, "alice", map[string]any{"jti": "t1"}), revNow, true},
		{"other jti", []config.Revocation{revEntry("jti", "t1", "", later)}, jwtID(issA, "alice", map[string]any{"jti": "t2"}), revNow, false},
		{"jti differing in case", []config.Revocation{revEntry("jti", "t1", "", later)}, jwtID(issA, "alice", map[string]any{"jti": "T1"}), revNow, false},
		{"no jti claim", []config.Revocation{revEntry("jti", "t1", "", later)}, jwtID(issA, "alice", nil), revNow, false},
		{"numeric jti as written", []config.Revocation{revEntry("jti", "1234", "", later)}, jwtID(issA, "alice", map[string]any{"jti": json.Number("1234")}), revNow, true},
		{"jti of another type", []config.Revocation{revEntry("jti", "true", "", later)}, jwtID(issA, "alice", map[string]any{"jti": true}), revNow, false},
		{"sub", []config.Revocation{revEntry("sub", "alice", "", later)}, jwtID(issB, "alice", nil), revNow, true},
		{"sub is not jti", []config.Revocation{revEntry("sub", "t1", "", later)}, jwtID(issA, "alice", map[string]any{"jti": "t1"}), revNow, false},
		{"sid", []config.Revocation{revEntry("sid", "s1", "", later)}, jwtID(issA, "alice", map[string]any{"sid": "s1"}), revNow, true},
		{"issuer matches", []config.Revocation{revEntry("sub", "alice", issA, later)}, jwtID(issA, "alice", nil), revNow, true},
		{"issuer differs", []config.Revocation{revEntry("sub", "alice", issA, later)}, jwtID(issB, "alice", nil), revNow, false},
		{"ended at build", []config.Revocation{revEntry("sub", "alice", "", revNow)}, jwtID(issA, "alice", nil), revNow, false},
		{"ends after build", []config.Revocation{revEntry("sub", "alice", "", sooner)}, jwtID(issA, "alice", nil), sooner, false},
		{"duplicate keeps the latest end", []config.Revocation{revEntry("sub", "alice", "", later), revEntry("sub", "alice", "", sooner)}, jwtID(issA, "alice", nil), sooner.Add(time.Second), true},
		{"issuer-less and scoped entries of one value", []config.Revocation{revEntry("sub", "alice", issA, sooner), revEntry("sub", "alice", "", later)}, jwtID(issA, "alice", nil), sooner, true},
		{"api keys are never revoked here", []config.Revocation{revEntry("sub", "partner", "", later)}, &identity.Identity{Kind: identity.KindAPIKey, Subject: "partner"}, revNow, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := newRevocations(revPolicy(tt.entries...), revIssuers, revNow)
			if err != nil {
				t.Fatal(err)
			}
			got := r != nil && r.revoked(tt.id, tt.at)
			if got != tt.want {
				t.Fatalf("got revoked %v, want %v", got, tt.want)
			}
		})
	}
}

// A policy whose entries have all ended, or that has none, gets no index:
// its requests skip the check entirely.
func TestRevocationsNilWhenNoneInForce(t *testing.T) {
	t.Parallel()
	for _, p := range []*config.Policy{revPolicy(), revPolicy(revEntry("jti", "t", "", revNow.Add(-time.Hour)))} {
		if r, err := newRevocations(p, revIssuers, revNow); err != nil || r != nil {
			t.Fatalf("got %+v, %v, want no index", r, err)
		}
	}
	if _, err := newRevocations(revPolicy(config.Revocation{Claim: "jti", Value: "t", ExpiresAt: "soon"}), revIssuers, revNow); err == nil {
		t.Fatal("got an unparseable expiresAt indexed, want an error")
	}
}

// An issuer-less entry purges cached identities of the policy's issuers
// only: another policy's issuer may share the cache.
func TestRevocationsPurgeOnlyTrustedIssuers(t *testing.T) {
	t.Parallel()
	r, err := newRevocations(revPolicy(revEntry("sub", "alice", "", revNow.Add(time.Hour))), revIssuers, revNow)
	if err != nil {
		t.Fatal(err)
	}
	if !r.purges(jwtID(issB, "alice", nil), revNow) {
		t.Fatal("got an identity of a trusted issuer kept, want it purged")
	}
	if r.purges(jwtID("https://c.example.com/", "alice", nil), revNow) {
		t.Fatal("got an identity of an issuer the policy does not trust purged, want it kept")
	}
}

// The request-path check allocates nothing, hit or miss.
func TestRevocationsCheckDoesNotAllocate(t *testing.T) {
	r, err := newRevocations(revPolicy(
		revEntry("jti", "t1", "", revNow.Add(time.Hour)),
		revEntry("sub", "bob", issA, revNow.Add(time.Hour)),
		revEntry("sid", "s1", "", revNow.Add(time.Hour)),
	), revIssuers, revNow)
	if err != nil {
		t.Fatal(err)
	}
	hit := jwtID(issA, "alice", map[string]any{"jti": "t1"})
	miss := jwtID(issA, "alice", map[string]any{"jti": "t2", "sid": "s2"})
	if n := testing.AllocsPerRun(100, func() {
		if !r.revoked(hit, revNow) || r.revoked(miss, revNow) {
			panic("wrong answer")
		}
	}); n != 0 {
		t.Fatalf("got %v allocations per check, want 0", n)
	}
}
