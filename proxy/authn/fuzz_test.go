package authn

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/jwks"
)

// FuzzExtract sends arbitrary credential headers, cookies and queries. It
// must never panic, never return a credential longer than MaxTokenBytes or
// an empty one, and after Strip the request must hold no credential.
func FuzzExtract(f *testing.F) {
	seeds := [][5]string{
		{"Bearer abc.def.ghi", "", "", "", ""},
		{"bearer abc", "", "", "", ""},
		{"Bearer  abc", "", "", "", ""},
		{"Bearer ", "Bearer x", "", "", ""},
		{"Basic dXNlcjpwYXNz", "", "k", "", ""},
		{"", "", "", "a=1; at=tok; b=2", ""},
		{"", "", "", `at="tok"`, "x=1&access_token=tok"},
		{"", "", "", "at=a;at=b", "access_token=a;access_token=b"},
		{"", "", "Token abc", "", "%61ccess_token=x&y"},
		{"", "", "", "", "access_token=%zz"},
		{"Bearer " + strings.Repeat("a", 300), "", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	const maxBytes = 256
	a := extractAuthn(f, maxBytes, true)
	f.Fuzz(func(t *testing.T, auth1, auth2, apiKey, cookie, query string) {
		r := &http.Request{Method: http.MethodGet, Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: query}, RequestURI: "/?" + query}
		for _, v := range []string{auth1, auth2} {
			if v != "" {
				r.Header.Add("Authorization", v)
			}
		}
		if apiKey != "" {
			r.Header.Set("X-Auth", apiKey)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		c, err := a.Extract(r)
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("got %T error %v, want *Error", err, err)
			}
			return
		}
		if len(c.Value) == 0 || len(c.Value) > maxBytes {
			t.Fatalf("got credential of %d bytes, want 1..%d", len(c.Value), maxBytes)
		}
		if !slices.Contains([]string{config.SourceBearer, config.SourceHeader, config.SourceCookie, config.SourceQuery}, c.Source.Type) {
			t.Fatalf("got source %+v, want a configured one", c.Source)
		}
		a.Strip(r, c)
		if _, err := a.Extract(r); !isReason(err, ReasonMissingCredential) {
			t.Fatalf("after Strip of %v: got %v, want missing_credential", c, err)
		}
	})
}

// FuzzParseJWT runs the structural pre-check on arbitrary tokens. It must
// not panic, and anything it accepts has three parts, an allowed alg and no
// forbidden header.
func FuzzParseJWT(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwczovL2kuZXhhbXBsZSJ9.c2ln",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"eyJhbGciOiJSUzI1NiIsImprdSI6Imh0dHA6Ly94In0.eyJpc3MiOiJ4In0.c2ln",
		"a.b.c.d.e",
		`{"payload":"x","signatures":[]}`,
		"....",
		"eyJhbGciOiJSUzI1NiJ9.bnVsbA.c2ln",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		u, err := parseJWT(tok)
		if err != nil {
			if err.Status != http.StatusUnauthorized {
				t.Fatalf("got status %d, want 401", err.Status)
			}
			return
		}
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("accepted %d dots, want 2", strings.Count(tok, "."))
		}
		if !config.IsSupportedAlgorithm(u.alg) {
			t.Fatalf("accepted alg %q, want a supported one", u.alg)
		}
		h, _, _ := strings.Cut(tok, ".")
		raw, derr := base64.RawURLEncoding.DecodeString(h)
		var hdr map[string]any
		if derr != nil || json.Unmarshal(raw, &hdr) != nil {
			t.Fatalf("accepted an undecodable header (%v)", derr)
		}
		for k := range hdr {
			if jwks.IsForbiddenHeader(k) {
				t.Fatalf("accepted forbidden header %q", k)
			}
		}
	})
}

// FuzzFormCredential: any form body is either refused or handed on
// byte-for-byte; a refusal is ambiguous_credential and means the body has
// an access_token parameter.
func FuzzFormCredential(f *testing.F) {
	for _, s := range []string{"a=1&access_token=x", "access%5Ftoken=1", "a=1;access_token", "", "%zz=1", "b=access_token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		err := FormCredential(r)
		if err != nil {
			if ae, ok := AsError(err); !ok || ae.Reason != ReasonAmbiguousCredential {
				t.Fatalf("got %v, want nil or ambiguous_credential", err)
			}
			return
		}
		got, _ := io.ReadAll(r.Body)
		if string(got) != body {
			t.Fatalf("the body changed: got %q, want %q", got, body)
		}
	})
}
