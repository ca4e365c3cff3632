package issuers

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnsureFaults(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name    string
		mode    int32
		wantErr string
	}{
		{"down", modeDown, "unexpected status 503"},
		{"slow", modeHang, "did not finish within 300ms|timeout|deadline exceeded"},
		{"garbage", modeGarbage, "parse key set"},
		{"no usable key", modeUnusable, "none usable"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" at cold start", func(t *testing.T) {
			t.Parallel()
			idp := newIDP(t)
			idp.mode.Store(tc.mode)
			f := newManager(t, fetchTimeout(timeout))
			spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
			start := time.Now()
			st := f.m.Ensure(t.Context(), spec)
			if elapsed := time.Since(start); elapsed > timeout+10*time.Second {
				t.Fatalf("got Ensure blocking %v, want at most about the %v fetch timeout", elapsed, timeout)
			}
			if st.KeyCount != 0 || len(st.Keys.Keys) != 0 || !st.LastSuccess.IsZero() {
				t.Fatalf("got state %s, want no keys", summary(st))
			}
			if !regexp.MustCompile(tc.wantErr).MatchString(st.LastError) {
				t.Fatalf("got last error %q, want it to match %q", st.LastError, tc.wantErr)
			}
			if want := f.clk.Now().Add(DefaultMinRefresh); !st.NextRefresh.Equal(want) {
				t.Fatalf("got next refresh %v, want a retry at %v", st.NextRefresh, want)
			}
			if _, ok := f.m.Lookup(spec); ok {
				t.Fatal("got keys from Lookup, want none")
			}
			// No refetch before the retry is due; one when it is (once the
			// key set's own detached fetch has given up too).
			waitFor(t, func() bool { return f.m.keySetError(spec) != "" })
			idp.mode.Store(modeOK)
			f.clk.Advance(DefaultMinRefresh - time.Second)
			if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 0 || idp.jwksHits.Load() != 1 {
				t.Fatalf("got %d keys after %d requests, want the retry to wait for MinRefresh", st.KeyCount, idp.jwksHits.Load())
			}
			f.clk.Advance(time.Second)
			if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 || st.LastError != "" || idp.jwksHits.Load() != 2 {
				t.Fatalf("got state %s after %d requests, want recovery on the retry", summary(st), idp.jwksHits.Load())
			}
		})
		t.Run(tc.name+" after success", func(t *testing.T) {
			t.Parallel()
			idp := newIDP(t)
			f := newManager(t, fetchTimeout(timeout))
			spec := Spec{IssuerURL: idp.URL}
			t0 := f.clk.Now()
			if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 {
				t.Fatalf("got state %s, want 2 keys", summary(st))
			}
			idp.mode.Store(tc.mode)
			f.clk.Advance(DefaultMinRefresh)
			st := f.m.Ensure(t.Context(), spec)
			if got, want := kidsOf(t, st.Keys), idp.kids(); !slices.Equal(got, want) || st.KeyCount != 2 {
				t.Fatalf("got kids %v (count %d), want the last good %v", got, st.KeyCount, want)
			}
			if !regexp.MustCompile(tc.wantErr).MatchString(st.LastError) || !st.LastSuccess.Equal(t0) {
				t.Fatalf("got last error %q and last success %v, want an error matching %q and %v", st.LastError, st.LastSuccess, tc.wantErr, t0)
			}
			if want := f.clk.Now().Add(DefaultMinRefresh); !st.NextRefresh.Equal(want) {
				t.Fatalf("got next refresh %v, want a retry at %v", st.NextRefresh, want)
			}
			if keys, ok := f.m.Lookup(spec); !ok || len(keys.Keys) != 2 {
				t.Fatalf("got %d keys from Lookup, want the last good 2", len(keys.Keys))
			}
		})
	}
}

func TestSlowDiscoveryAndKeysBoundedByFetchTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	idp := newIDP(t)
	// Each request stays under the timeout; together they exceed it.
	idp.discoDelay.Store(int64(200 * time.Millisecond))
	idp.jwksDelay.Store(int64(200 * time.Millisecond))
	f := newManager(t, fetchTimeout(timeout))
	spec := Spec{IssuerURL: idp.URL}
	start := time.Now()
	st := f.m.Ensure(t.Context(), spec)
	if elapsed := time.Since(start); elapsed > timeout+10*time.Second {
		t.Fatalf("got Ensure blocking %v, want at most about %v", elapsed, timeout)
	}
	if !strings.Contains(st.LastError, "did not finish within") {
		t.Fatalf("got state %s, want the fetch timeout reported", summary(st))
	}
	// The detached fetch completes; its keys are used from then on.
	waitFor(t, func() bool { _, ok := f.m.Lookup(spec); return ok })
}

func TestEnsureStopsWaitingWhenCallerGivesUp(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	idp.mode.Store(modeBlock)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan State, 1)
	go func() { done <- f.m.Ensure(ctx, spec) }()
	<-idp.arrived
	cancel()
	st := <-done
	if st.KeyCount != 0 || !st.Pending || st.LastError != "" || !st.NextRefresh.Equal(f.clk.Now().Add(2*time.Second)) {
		t.Fatalf("got state %s, want no keys, pending, no error yet and a retry after the fetch timeout", summary(st))
	}
	close(idp.unblock)
	// The refresh went on without the caller.
	waitFor(t, func() bool { _, ok := f.m.Lookup(spec); return ok })
	if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 || idp.jwksHits.Load() != 1 {
		t.Fatalf("got state %s after %d requests, want the finished refresh reused", summary(st), idp.jwksHits.Load())
	}
}

func TestStaleKeysAreDropped(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	f.m.Ensure(t.Context(), spec)
	idp.mode.Store(modeDown)
	f.clk.Advance(DefaultMaxStaleness)
	if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 || st.LastError == "" {
		t.Fatalf("got state %s at the staleness bound, want the last good keys and the error", summary(st))
	}
	f.clk.Advance(time.Second)
	if _, ok := f.m.Lookup(spec); ok {
		t.Fatal("got keys from Lookup past MaxStaleness, want none")
	}
	f.clk.Advance(DefaultMinRefresh)
	if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 0 || len(st.Keys.Keys) != 0 || st.LastError == "" {
		t.Fatalf("got state %s past MaxStaleness, want no keys and the error", summary(st))
	}
}

func TestInvalidSpecsAreNotFetched(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"plain http issuer", Spec{IssuerURL: "http://idp.example.com"}, "issuerURL"},
		{"other scheme", Spec{IssuerURL: "ftp://idp.example.com"}, "issuerURL"},
		{"relative", Spec{IssuerURL: "/realms/x"}, "issuerURL"},
		{"empty", Spec{}, "issuerURL"},
		{"user info", Spec{IssuerURL: "https://u:p@idp.example.com"}, "issuerURL"},
		{"issuer query", Spec{IssuerURL: idp.URL + "?tenant=x"}, "issuerURL"},
		{"issuer fragment", Spec{IssuerURL: idp.URL + "#x"}, "issuerURL"},
		{"plain http jwks", Spec{IssuerURL: idp.URL, JWKSURL: "http://idp.example.com/jwks?access_token=sekrit"}, "jwksURL"},
		{"jwks user info", Spec{IssuerURL: idp.URL, JWKSURL: "https://sekrit:p@idp.example.com/jwks"}, "jwksURL"},
		{"hmac", Spec{IssuerURL: idp.URL, Algorithms: []string{"HS256"}}, "unsupported algorithm"},
		{"none", Spec{IssuerURL: idp.URL, Algorithms: []string{"RS256", "none"}}, "unsupported algorithm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newManager(t)
			st := f.m.Ensure(t.Context(), tc.spec)
			if !strings.Contains(st.LastError, tc.wantErr) || st.KeyCount != 0 || st.Keys.Keys == nil {
				t.Fatalf("got state %s, want an empty key set and an error naming %q", summary(st), tc.wantErr)
			}
			if strings.Contains(st.LastError, "sekrit") || strings.Contains(f.logs.String(), "sekrit") {
				t.Fatalf("got a URL credential in error %q or logs, want it absent", st.LastError)
			}
			if want := f.clk.Now().Add(DefaultMaxRefresh); !st.NextRefresh.Equal(want) {
				t.Fatalf("got next refresh %v, want %v", st.NextRefresh, want)
			}
			if n := len(f.m.entries); n != 0 {
				t.Fatalf("got %d cached entries, want none for an invalid spec", n)
			}
		})
	}
	if n := idp.discoHits.Load() + idp.jwksHits.Load(); n != 0 {
		t.Fatalf("got %d requests to the issuer, want 0", n)
	}
}
