package issuers

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

func TestEnsureFaults(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name    string
		mode    faultidp.Fault
		wantErr string
	}{
		{"down", faultidp.Down, "unexpected status 503"},
		{"slow", faultidp.Hang, "did not finish within 300ms|timeout|deadline exceeded"},
		{"garbage", faultidp.Garbage, "parse key set"},
		{"no usable key", faultidp.SymmetricKey, "none usable"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" at cold start", func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			idp.Set(faultidp.JWKS, tc.mode)
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
			wait.For(t, 0, func() bool { return f.m.keySetError(spec) != "" }, "the key set's detached fetch to fail")
			idp.Set(faultidp.JWKS, faultidp.None)
			f.clk.Advance(DefaultMinRefresh - time.Second)
			if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 0 || idp.Hits(faultidp.JWKS) != 1 {
				t.Fatalf("got %d keys after %d requests, want the retry to wait for MinRefresh", st.KeyCount, idp.Hits(faultidp.JWKS))
			}
			f.clk.Advance(time.Second)
			if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 || st.LastError != "" || idp.Hits(faultidp.JWKS) != 2 {
				t.Fatalf("got state %s after %d requests, want recovery on the retry", summary(st), idp.Hits(faultidp.JWKS))
			}
		})
		t.Run(tc.name+" after success", func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			f := newManager(t, fetchTimeout(timeout))
			spec := Spec{IssuerURL: idp.URL}
			t0 := f.clk.Now()
			if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 {
				t.Fatalf("got state %s, want 2 keys", summary(st))
			}
			idp.Set(faultidp.JWKS, tc.mode)
			f.clk.Advance(DefaultMinRefresh)
			st := f.m.Ensure(t.Context(), spec)
			if got, want := kidsOf(t, st.Keys), idp.KIDs(); !slices.Equal(got, want) || st.KeyCount != 2 {
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
	idp := faultidp.New(t)
	// Each request stays under the timeout; together they exceed it.
	idp.SetDelay(faultidp.Discovery, 200*time.Millisecond)
	idp.SetDelay(faultidp.JWKS, 200*time.Millisecond)
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
	wait.For(t, 0, func() bool { _, ok := f.m.Lookup(spec); return ok }, "the detached fetch's keys")
}

func TestEnsureStopsWaitingWhenCallerGivesUp(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Block)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan State, 1)
	go func() { done <- f.m.Ensure(ctx, spec) }()
	<-idp.Arrived()
	cancel()
	st := <-done
	if st.KeyCount != 0 || !st.Pending || st.LastError != "" || !st.NextRefresh.Equal(f.clk.Now().Add(2*time.Second)) {
		t.Fatalf("got state %s, want no keys, pending, no error yet and a retry after the fetch timeout", summary(st))
	}
	idp.Unblock()
	// The refresh went on without the caller.
	wait.For(t, 0, func() bool { _, ok := f.m.Lookup(spec); return ok }, "the keys of the refresh the caller left")
	if st := f.m.Ensure(t.Context(), spec); st.KeyCount != 2 || idp.Hits(faultidp.JWKS) != 1 {
		t.Fatalf("got state %s after %d requests, want the finished refresh reused", summary(st), idp.Hits(faultidp.JWKS))
	}
}

func TestStaleKeysAreDropped(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	f.m.Ensure(t.Context(), spec)
	idp.Set(faultidp.JWKS, faultidp.Down)
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
	idp := faultidp.New(t)
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
	if n := idp.Hits(faultidp.Discovery | faultidp.JWKS); n != 0 {
		t.Fatalf("got %d requests to the issuer, want 0", n)
	}
}

// An issuer whose address the fetch policy refuses fails like any other
// fetch (LastError, the error metric, a retry after MinRefresh), marked
// AddressNotAllowed, with the refused address and the range in LastError:
// a link-local URL, a loopback IdP the default policy refuses, and a name
// resolving to loopback.
func TestFetchPolicyRefusal(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	byName := strings.Replace(idp.URL, "127.0.0.1", "localhost", 1)
	tests := []struct {
		name   string
		policy func(*Options)
		spec   Spec
		want   string
	}{
		{"metadata address", nil, Spec{IssuerURL: "https://169.254.169.254"},
			"discovery: address 169.254.169.254 is not allowed by the fetch policy (link-local)"},
		{"loopback IdP, default policy", func(o *Options) { o.FetchPolicy = netguard.Policy{} }, Spec{IssuerURL: idp.URL},
			"discovery: address 127.0.0.1 is not allowed by the fetch policy (loopback)"},
		{"a name resolving to loopback, default policy", func(o *Options) { o.FetchPolicy = netguard.Policy{} }, Spec{IssuerURL: byName},
			"is not allowed by the fetch policy (loopback)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { // not parallel: the hit count is checked after them
			mut := []func(*Options){fetchTimeout(2 * time.Second)}
			if tt.policy != nil {
				mut = append(mut, tt.policy)
			}
			f := newManager(t, mut...)
			st := f.m.Ensure(t.Context(), tt.spec)
			if !st.AddressNotAllowed || !strings.Contains(st.LastError, tt.want) || st.KeyCount != 0 {
				t.Fatalf("got state %s (address not allowed: %v), want no keys and an error containing %q", summary(st), st.AddressNotAllowed, tt.want)
			}
			if cur := f.m.Current(tt.spec); !cur.AddressNotAllowed || cur.LastError != st.LastError {
				t.Fatalf("got Current %s (address not allowed: %v), want what Ensure reported", summary(cur), cur.AddressNotAllowed)
			}
			if got := testutil.ToFloat64(f.m.metrics.refreshes.WithLabelValues(tt.spec.IssuerURL, resultError)); got != 1 {
				t.Fatalf("got %v error refreshes, want the refusal counted as one", got)
			}
		})
	}
	if n := idp.Hits(faultidp.All); n != 0 {
		t.Fatalf("got %d requests at the refused IdP, want none", n)
	}
}
