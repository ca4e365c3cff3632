package authn

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/config"
)

var (
	srcBearer = config.CredentialSource{Type: config.SourceBearer}
	srcCookie = config.CredentialSource{Type: config.SourceCookie, Name: "at"}
	srcAPIKey = config.CredentialSource{Type: config.SourceHeader, Name: "X-Api-Key"}
	srcQuery  = config.CredentialSource{Type: config.SourceQuery, Name: "access_token"}
	srcPrefix = config.CredentialSource{Type: config.SourceHeader, Name: "X-Auth", Prefix: "Token "}
)

// extractAuthn trusts one issuer from bearer and the "at" cookie, plus the
// API key header; withQuery adds the access_token query parameter.
func extractAuthn(t testing.TB, maxBytes int, withQuery bool) *Authenticator {
	t.Helper()
	clk := newClock()
	ic := config.Issuer{
		Name: "dev", IssuerURL: "https://issuer.example", JWKSURL: "https://issuer.example/jwks",
		Audiences: []string{testAudience}, Sources: []config.CredentialSource{srcBearer, srcCookie, srcPrefix},
	}
	if withQuery {
		ic.Sources = append(ic.Sources, srcQuery)
	}
	cfg := baseConfig(clk, ic)
	cfg.Limits.MaxTokenBytes = maxBytes
	return newAuthn(t, cfg, clk)
}

func TestExtract(t *testing.T) {
	t.Parallel()
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	tests := []struct {
		name       string
		target     string
		header     http.Header
		withQuery  bool
		want       string // reason, "" for success
		wantValue  string
		wantSource config.CredentialSource
	}{
		{name: "bearer", header: http.Header{"Authorization": {"Bearer " + tok}}, wantValue: tok, wantSource: srcBearer},
		{name: "bearer lower case", header: http.Header{"Authorization": {"bearer " + tok}}, wantValue: tok, wantSource: srcBearer},
		{name: "bearer upper case", header: http.Header{"Authorization": {"BEARER " + tok}}, wantValue: tok, wantSource: srcBearer},
		{name: "bearer with b64 padding", header: http.Header{"Authorization": {"Bearer abc+/~=="}}, wantValue: "abc+/~==", wantSource: srcBearer},
		{name: "bearer with two spaces", header: http.Header{"Authorization": {"Bearer  " + tok}}, want: ReasonMalformedCredential},
		{name: "bearer with trailing space", header: http.Header{"Authorization": {"Bearer " + tok + " "}}, want: ReasonMalformedCredential},
		{name: "bearer with tab", header: http.Header{"Authorization": {"Bearer\t" + tok}}, want: ReasonMissingCredential},
		{name: "bearer with two tokens", header: http.Header{"Authorization": {"Bearer a b"}}, want: ReasonMalformedCredential},
		{name: "bearer with comma", header: http.Header{"Authorization": {"Bearer a,b"}}, want: ReasonMalformedCredential},
		{name: "bearer with inner equals", header: http.Header{"Authorization": {"Bearer a=b"}}, want: ReasonMalformedCredential},
		{name: "empty bearer", header: http.Header{"Authorization": {"Bearer "}}, want: ReasonMalformedCredential},
		{name: "bearer without token", header: http.Header{"Authorization": {"Bearer"}}, want: ReasonMalformedCredential},
		{name: "bearer only equals", header: http.Header{"Authorization": {"Bearer ==="}}, want: ReasonMalformedCredential},
		{name: "basic is not bearer", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, want: ReasonMissingCredential},
		{name: "bearer-like scheme", header: http.Header{"Authorization": {"Bearerx " + tok}}, want: ReasonMissingCredential},
		{name: "two authorization headers", header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, want: ReasonAmbiguousCredential},
		{name: "bearer and basic", header: http.Header{"Authorization": {"Basic eA==", "Bearer " + tok}}, want: ReasonAmbiguousCredential},
		{name: "header and cookie at once", header: http.Header{"Authorization": {"Bearer " + tok}, "Cookie": {"at=" + tok}}, want: ReasonAmbiguousCredential},
		{name: "bearer and api key at once", header: http.Header{"Authorization": {"Bearer " + tok}, "X-Api-Key": {keyCI}}, want: ReasonAmbiguousCredential},
		{name: "basic and api key", header: http.Header{"Authorization": {"Basic eA=="}, "X-Api-Key": {keyCI}}, want: ReasonAmbiguousCredential},
		{name: "other scheme and cookie", header: http.Header{"Authorization": {"DPoP abc"}, "Cookie": {"at=" + tok}}, want: ReasonAmbiguousCredential},
		{name: "bearer and unread access_token query", target: "/?access_token=x", header: http.Header{"Authorization": {"Bearer " + tok}}, want: ReasonAmbiguousCredential},
		{name: "api key and escaped access_token query", target: "/?a=1&access%5Ftoken=x", header: http.Header{"X-Api-Key": {keyCI}}, want: ReasonAmbiguousCredential},
		{name: "bearer and unrelated query", target: "/?access_token_hint=x&token=y", header: http.Header{"Authorization": {"Bearer " + tok}}, wantValue: tok, wantSource: srcBearer},
		{name: "cookie", header: http.Header{"Cookie": {"a=1; at=" + tok + "; b=2"}}, wantValue: tok, wantSource: srcCookie},
		{name: "quoted cookie", header: http.Header{"Cookie": {`at="` + tok + `"`}}, wantValue: tok, wantSource: srcCookie},
		{name: "cookie twice in one line", header: http.Header{"Cookie": {"at=a; at=b"}}, want: ReasonAmbiguousCredential},
		{name: "cookie twice in two lines", header: http.Header{"Cookie": {"at=a", "x=1; at=b"}}, want: ReasonAmbiguousCredential},
		{name: "cookie twice, one invalid", header: http.Header{"Cookie": {"at=" + tok + "; at=in valid"}}, want: ReasonAmbiguousCredential},
		{name: "empty cookie", header: http.Header{"Cookie": {"at="}}, want: ReasonMalformedCredential},
		{name: "cookie with bad octets", header: http.Header{"Cookie": {`at=a\b`}}, want: ReasonMalformedCredential},
		{name: "cookie name prefix is another cookie", header: http.Header{"Cookie": {"att=" + tok}}, want: ReasonMissingCredential},
		{name: "api key", header: http.Header{"X-Api-Key": {keyCI}}, wantValue: keyCI, wantSource: srcAPIKey},
		{name: "api key twice", header: http.Header{"X-Api-Key": {keyCI, keyCI}}, want: ReasonAmbiguousCredential},
		{name: "empty api key", header: http.Header{"X-Api-Key": {""}}, want: ReasonMalformedCredential},
		{name: "api key with space", header: http.Header{"X-Api-Key": {"a b"}}, want: ReasonMalformedCredential},
		{name: "api key with LF", header: http.Header{"X-Api-Key": {"a\nb"}}, want: ReasonMalformedCredential},
		{name: "prefixed header", header: http.Header{"X-Auth": {"token " + tok}}, wantValue: tok, wantSource: srcPrefix},
		{name: "prefixed header without prefix", header: http.Header{"X-Auth": {tok}}, want: ReasonMalformedCredential},
		{name: "prefixed header with prefix only", header: http.Header{"X-Auth": {"Token "}}, want: ReasonMalformedCredential},
		{name: "query disabled by default", target: "/?access_token=" + tok, want: ReasonMissingCredential},
		{name: "query enabled", target: "/?x=1&access_token=" + tok, withQuery: true, wantValue: tok, wantSource: srcQuery},
		{name: "query escaped name", target: "/?%61ccess_token=" + tok, withQuery: true, wantValue: tok, wantSource: srcQuery},
		{name: "query twice", target: "/?access_token=a&access_token=b", withQuery: true, want: ReasonAmbiguousCredential},
		{name: "query twice via semicolon", target: "/?access_token=a;access_token=b", withQuery: true, want: ReasonAmbiguousCredential},
		{name: "query twice via escaping", target: "/?access_token=a&access%5Ftoken=b", withQuery: true, want: ReasonAmbiguousCredential},
		{name: "query and bearer", target: "/?access_token=" + tok, header: http.Header{"Authorization": {"Bearer " + tok}}, withQuery: true, want: ReasonAmbiguousCredential},
		{name: "empty query value", target: "/?access_token=", withQuery: true, want: ReasonMalformedCredential},
		{name: "bad query escape", target: "/?access_token=%zz", withQuery: true, want: ReasonMalformedCredential},
		{name: "no credential", want: ReasonMissingCredential},
		{name: "oversized bearer", header: http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 257)}}, want: ReasonOversizedCredential},
		{name: "bearer at the limit", header: http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 256)}}, wantValue: strings.Repeat("a", 256), wantSource: srcBearer},
		{name: "oversized garbage bearer", header: http.Header{"Authorization": {"Bearer " + strings.Repeat(" ", 100000)}}, want: ReasonOversizedCredential},
		{name: "oversized cookie", header: http.Header{"Cookie": {"at=" + strings.Repeat("a", 257)}}, want: ReasonOversizedCredential},
		{name: "oversized api key", header: http.Header{"X-Api-Key": {strings.Repeat("a", 257)}}, want: ReasonOversizedCredential},
		{name: "oversized query", target: "/?access_token=" + strings.Repeat("a", 257), withQuery: true, want: ReasonOversizedCredential},
	}
	plain, query := extractAuthn(t, 256, false), extractAuthn(t, 256, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := plain
			if tt.withQuery {
				a = query
			}
			target := tt.target
			if target == "" {
				target = "/"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			c, err := a.Extract(r)
			wantErr(t, err, tt.want)
			if tt.want != "" {
				if c != (Credential{}) {
					t.Fatalf("got credential %v with an error, want none", c)
				}
				return
			}
			if c.Value != tt.wantValue || c.Source != tt.wantSource {
				t.Fatalf("got value %q from %+v, want %q from %+v", c.Value, c.Source, tt.wantValue, tt.wantSource)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	t.Parallel()
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	tests := []struct {
		name       string
		target     string
		header     http.Header
		wantHeader http.Header
		wantQuery  string
		wantURI    string
	}{
		{
			name:       "bearer header removed",
			header:     http.Header{"Authorization": {"Bearer " + tok}, "Accept": {"*/*"}},
			wantHeader: http.Header{"Accept": {"*/*"}},
		},
		{
			name:       "cookie removed, others kept",
			header:     http.Header{"Cookie": {"a=1; at=" + tok + ";b=2", "c=3"}},
			wantHeader: http.Header{"Cookie": {"a=1; b=2", "c=3"}},
		},
		{
			name:       "only cookie removed with its header",
			header:     http.Header{"Cookie": {"at=" + tok}},
			wantHeader: http.Header{},
		},
		{
			name:       "api key removed",
			header:     http.Header{"X-Api-Key": {keyCI}},
			wantHeader: http.Header{},
		},
		{
			name:       "prefixed header removed",
			header:     http.Header{"X-Auth": {"Token " + tok}},
			wantHeader: http.Header{},
		},
		{
			name: "query parameter removed", target: "/p?x=1&access_token=" + tok + "&y=2",
			wantHeader: http.Header{}, wantQuery: "x=1&y=2", wantURI: "/p?x=1&y=2",
		},
		{
			name: "only query parameter removed", target: "/p?access_token=" + tok,
			wantHeader: http.Header{}, wantQuery: "", wantURI: "/p",
		},
		{
			name: "escaped query name removed", target: "/p?%61ccess_token=" + tok + ";z=3",
			wantHeader: http.Header{}, wantQuery: "z=3", wantURI: "/p?z=3",
		},
	}
	a := extractAuthn(t, 8192, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := tt.target
			if target == "" {
				target = "/p"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			c, err := a.Extract(r)
			if err != nil {
				t.Fatalf("extract: got %v, want success", err)
			}
			a.Strip(r, c)
			if got, want := fmt.Sprint(r.Header), fmt.Sprint(tt.wantHeader); got != want {
				t.Errorf("got header %s, want %s", got, want)
			}
			if tt.target != "" {
				if r.URL.RawQuery != tt.wantQuery {
					t.Errorf("got query %q, want %q", r.URL.RawQuery, tt.wantQuery)
				}
				if r.RequestURI != tt.wantURI {
					t.Errorf("got request URI %q, want %q", r.RequestURI, tt.wantURI)
				}
			}
			if _, err := a.Extract(r); !isReason(err, ReasonMissingCredential) {
				t.Errorf("after Strip: got %v, want missing_credential", err)
			}
		})
	}
}

func TestCredentialRedacted(t *testing.T) {
	t.Parallel()
	const secret = "sk_live_supersecret_value"
	c := Credential{Value: secret, Source: srcAPIKey}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "cred", c)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", c),
		"%#v":  fmt.Sprintf("%#v", c),
		"%s":   fmt.Sprintf("%s", c), //nolint:staticcheck // the %s verb itself is under test
		"slog": buf.String(),
		"ptr":  fmt.Sprintf("%v", &c),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, "supersecret") {
			t.Errorf("%s: got %q, want the value redacted", name, out)
		}
		if !strings.Contains(out, "X-Api-Key") {
			t.Errorf("%s: got %q, want the source named", name, out)
		}
	}
}

func isReason(err error, reason string) bool {
	ae, ok := AsError(err)
	return ok && ae.Reason == reason
}
