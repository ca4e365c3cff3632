package issuers

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/testca"
)

func TestSpecKeyHoldsTheCABundle(t *testing.T) {
	t.Parallel()
	a, b := testca.New(t).PEM, testca.New(t).PEM
	base := Spec{IssuerURL: "https://idp.example.com"}
	with := func(ca string) Spec { s := base; s.CABundle = ca; return s }
	tests := []struct {
		name  string
		x, y  Spec
		equal bool
	}{
		{"same CA", with(a), with(a), true},
		{"different CAs", with(a), with(b), false},
		{"a CA and the system roots", with(a), base, false},
	}
	for _, tt := range tests {
		if got := tt.x.Key() == tt.y.Key(); got != tt.equal {
			t.Errorf("%s: got equal keys %v, want %v", tt.name, got, tt.equal)
		}
		if strings.Contains(tt.x.Key(), "BEGIN") {
			t.Errorf("%s: key carries the PEM, want its digest", tt.name)
		}
	}
}

// A spec's CA bundle is what its fetches trust: the IdP's CA fetches its
// keys, the system roots or another CA fail on the certificate, and an
// unusable bundle is refused before any fetch.
func TestEnsureTrustsOnlyTheSpecsCABundle(t *testing.T) {
	t.Parallel()
	ca, other := testca.New(t), testca.New(t)
	tests := []struct {
		name      string
		bundle    string
		wantKeys  bool
		wantError string
		wantHits  bool // a request got through to the IdP
	}{
		{name: "the IdP's CA", bundle: ca.PEM, wantKeys: true, wantHits: true},
		{name: "system roots", wantError: "certificate"},
		{name: "another CA", bundle: other.PEM, wantError: "certificate"},
		{name: "not PEM", bundle: "garbage", wantError: "holds no PEM CERTIFICATE block"},
		{name: "not normalized", bundle: "# comment\n" + ca.PEM, wantError: "not normalized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idp := faultidp.NewTLS(t, ca)
			f := newManager(t)
			st := f.m.Ensure(t.Context(), Spec{IssuerURL: idp.URL, CABundle: tt.bundle})
			if got := st.KeyCount > 0; got != tt.wantKeys {
				t.Fatalf("got state %s, want keys %v", summary(st), tt.wantKeys)
			}
			if !strings.Contains(st.LastError, tt.wantError) || (tt.wantError == "") != (st.LastError == "") {
				t.Fatalf("got error %q, want one containing %q", st.LastError, tt.wantError)
			}
			if got := idp.Hits(faultidp.All) > 0; got != tt.wantHits {
				t.Fatalf("got %d requests to the IdP, want requests %v", idp.Hits(faultidp.All), tt.wantHits)
			}
			if strings.Contains(st.LastError, "BEGIN") {
				t.Fatalf("error quotes the bundle: %s", st.LastError)
			}
		})
	}
}
