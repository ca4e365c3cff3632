package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/authgate/authgate/proxy/identity"
)

func cacheTestIdentities(t *testing.T) map[string]*identity.Identity {
	return map[string]*identity.Identity{
		"jwt": {
			Kind: identity.KindJWT, Subject: "alice", Issuer: "https://idp.example", Source: "idp",
			Scopes: []string{"orders:read", "orders:write"}, Roles: []string{"editor", "viewer"},
			Claims: decodeClaims(t, `{"sub":"alice","department":"eng","n":12345678901234567890,"f":1.50,
				"amr":["pwd","otp"],"org":{"tier":"gold","ids":[3,1,2],"x":null,"ok":true},"empty":{},"list":[]}`),
		},
		"apikey": {
			Kind: identity.KindAPIKey, Subject: "ci", Source: "apikey", KeyName: "ci",
			Scopes: []string{"deploy"}, Claims: decodeClaims(t, `{"sub":"ci","scope":"deploy"}`),
		},
		"empty": {Kind: identity.KindJWT},
	}
}

func cacheTestRequest() Request {
	return Request{
		Method: "GET", Path: "/departments/eng/reports", Host: "fn.example", ClientIP: "10.0.0.7",
		Query:   url.Values{"x": {"abc"}, "page": {"2"}},
		Headers: http.Header{"Accept": {"application/json"}, "X-Multi": {"a", "b"}, "Authorization": {"Bearer secret"}},
	}
}

// The cached identity value is invisible to policies: the input document
// is byte for byte the one built with a fresh conversion.
func TestNewInputCachedIdentityIsIdentical(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC)
	for name, id := range cacheTestIdentities(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			first := NewInput(cacheTestRequest(), id, "pol", "r", now, nil)  // converts and caches
			second := NewInput(cacheTestRequest(), id, "pol", "r", now, nil) // reuses the cache
			fresh := first.value.(ast.Object).Copy()
			fresh.Insert(keys.identity, ast.NewTerm((&builder{}).identity(id)))
			want, err := json.Marshal(&Input{value: fresh})
			if err != nil {
				t.Fatalf("marshal fresh input: %v", err)
			}
			for label, in := range map[string]*Input{"first": first, "second": second} {
				got, err := json.Marshal(in)
				if err != nil {
					t.Fatalf("marshal %s input: %v", label, err)
				}
				if string(got) != string(want) {
					t.Errorf("%s input: got\n%s\nwant\n%s", label, got, want)
				}
				if in.value.String() != fresh.String() || in.value.Compare(fresh) != 0 {
					t.Errorf("%s input: got Rego value %s, want %s", label, in.value, fresh)
				}
			}
			get := func(in *Input) *ast.Term { return in.value.(ast.Object).Get(keys.identity) }
			if get(first) != get(second) {
				t.Errorf("got a new identity term per input, want the cached one reused")
			}
			if cached, _ := id.Derived.Load(id).(*ast.Term); cached != get(second) {
				t.Errorf("got cached %v, want the input's identity term", cached)
			}
		})
	}
}

// sharedIdentityPolicy reads input.identity through built-ins that build
// new values from it (merge, patch, remove, walk, with, concat), which must
// not modify the shared value.
const sharedIdentityPolicy = `package authgate.authz

merged := object.union(input.identity.claims, {"department": "ops", "org": {"tier": "silver"}})

patched := json.patch(input.identity.claims, [
	{"op": "add", "path": "/org/added", "value": 1},
	{"op": "remove", "path": "/department"},
	{"op": "replace", "path": "/amr/0", "value": "sms"},
])

removed := object.remove(input.identity, ["claims"])

walked := [p | walk(input.identity, [p, _])]

claim_keys := sort([k | some k, _ in input.identity.claims])

dept := input.identity.claims.department

overridden := d if {
	d := dept with input.identity.claims.department as "ops"
}

concatenated := array.concat(input.identity.roles, ["x"])

sorted_ids := sort(input.identity.claims.org.ids)

decision := {
	"allow": input.identity.claims.department == "eng",
	"reason": json.marshal([merged, patched, removed, walked, claim_keys, overridden, concatenated, sorted_ids, input]),
}`

// Concurrent requests share one cached identity value, including its first
// conversion; run with -race.
func TestSharedIdentityConcurrentEval(t *testing.T) {
	t.Parallel()
	e := mustCompile(t, sharedIdentityPolicy)
	now := time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC)
	newID := func() *identity.Identity { return cacheTestIdentities(t)["jwt"] }

	// The expected answer, from an identity nobody else uses.
	ref := newID()
	want, err := e.Eval(context.Background(), NewInput(cacheTestRequest(), ref, "pol", "r", now, nil))
	if err != nil || !want.Allow {
		t.Fatalf("got (%+v, %v), want allow", want, err)
	}
	wantJSON, err := json.Marshal(NewInput(cacheTestRequest(), ref, "pol", "r", now, nil))
	if err != nil {
		t.Fatalf("marshal input: %v", err)
	}

	id := newID() // cache empty: the goroutines race to fill it
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 40 {
				dec, err := e.Eval(context.Background(), NewInput(cacheTestRequest(), id, "pol", "r", now, nil))
				if err != nil || !dec.Allow || dec.Reason != want.Reason {
					errs <- errors.Join(err, errors.New("got decision "+dec.Reason+", want "+want.Reason))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := json.Marshal(NewInput(cacheTestRequest(), id, "pol", "r", now, nil))
	if err != nil {
		t.Fatalf("marshal input: %v", err)
	}
	if string(got) != string(wantJSON) {
		t.Errorf("got input after concurrent evaluations\n%s\nwant unchanged\n%s", got, wantJSON)
	}
}

// A struct copy carries the original's cache slot; the copy must not see
// the original's value (a copy whose fields were changed would otherwise
// show the policy the original identity).
func TestIdentityCacheIgnoresOtherOwner(t *testing.T) {
	t.Parallel()
	a := cacheTestIdentities(t)["jwt"]
	b := cacheTestIdentities(t)["apikey"]
	ta := identityTerm(a)
	if got := a.Derived.Load(b); got != nil {
		t.Errorf("got %v for another identity, want nil", got)
	}
	if got := a.Derived.LoadOrStore(b, "other"); got != "other" {
		t.Errorf("got %v from LoadOrStore for another identity, want its own value", got)
	}
	if got := a.Derived.Load(a); got != ta {
		t.Errorf("got %v, want the first stored value kept", got)
	}
}

// OPA sorts an object's keys on first ordered access, but Object.Copy (used
// by `with input... as`) reads them unguarded: the cached value is frozen
// (sorted) before it is shared, so the two never race. Run with -race.
func TestCachedIdentityFrozen(t *testing.T) {
	t.Parallel()
	id := cacheTestIdentities(t)["jwt"]
	want := ast.NewTerm((&builder{}).identity(cacheTestIdentities(t)["jwt"])).String()
	term := identityTerm(id) // nothing may read it before the goroutines
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			obj := term.Value.(ast.Object)
			if i%2 == 0 {
				_ = obj.Copy()
				_ = obj.Get(keys.claims).Value.(ast.Object).Copy()
				return
			}
			_ = obj.Keys()
			_ = obj.Get(keys.claims).Value.(ast.Object).Keys()
		})
	}
	wg.Wait()
	if got := term.String(); got != want {
		t.Errorf("got %s after concurrent use, want %s", got, want)
	}
}
