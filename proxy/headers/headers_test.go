package headers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/headername"
	"github.com/authgate/authgate/proxy/identity"
)

func TestReservedPrefixMatchesConfig(t *testing.T) {
	t.Parallel()
	if got := headername.Normalize(config.ReservedHeaderPrefix); got != reservedPrefix {
		t.Fatalf("got %q, want %q", got, reservedPrefix)
	}
}

func TestStrip(t *testing.T) {
	t.Parallel()
	s := NewStripper([]string{"X-User", "x_tenant", "", "X-Authgate-Subject", "X-USER"})
	h := http.Header{
		"X-Authgate-Subject":      {"root"},
		"x-authgate-subject":      {"root2"},
		"X_authgate_subject":      {"underscore"},
		"X.authgate.subject":      {"dot"},
		"XAuthgateSubject":        {"squashed"},
		"x_authgate_email":        {"u@example.com"},
		"X-AUTHGATE-SCOPES":       {"admin"},
		"X-Authgate-Anything":     {"a", "b"},
		"X-Authgate":              {"the bare prefix"},
		"X-Authgatex-Subject":     {"starts with xauthgate once normalised"},
		"X-User":                  {"root"},
		"x_user":                  {"root"},
		"X.User":                  {"root"},
		"X-Tenant":                {"other"},
		"X_TENANT":                {"other"},
		"X-Authgate-\u00e9":       {"non-ASCII bytes are ignored"},
		"X\u212a-Authgate-Kelvin": {"the Kelvin sign is ignored, not folded to k"},
		"X-User-Agent-Extra":      {"kept"},
		"X-Authgat":               {"kept: not the whole prefix"},
		"Authorization":           {"Bearer x"},
		"X-Forwarded-For":         {"kept for the forwarded package"},
		"Content-Type":            {"text/plain"},
		"X-\u212aey":              {"kept: the Kelvin sign is not K"},
	}
	want := []string{"Authorization", "Content-Type", "X-Authgat", "X-Forwarded-For", "X-User-Agent-Extra", "X-\u212aey"}
	wantN := len(h) - len(want)
	if got := s.Strip(h); got != wantN {
		t.Fatalf("got %d removed, want %d", got, wantN)
	}
	var left []string
	for k := range h {
		left = append(left, k)
	}
	if !sameSet(left, want) {
		t.Fatalf("got remaining %q, want %q", left, want)
	}
}

// TestStripSpellings pins the normalisation: ASCII letters folded to lower
// case, digits kept, every other byte ignored; stripped when that equals a
// managed name or starts with "xauthgate".
func TestStripSpellings(t *testing.T) {
	t.Parallel()
	s := NewStripper([]string{"X-Authgate-Subject", "X-User-Id", "X-Tenant"})
	tests := []struct {
		name  string
		strip bool
	}{
		{"X-Authgate-Subject", true},
		{"x-authgate-subject", true},
		{"X-AUTHGATE-SUBJECT", true},
		{"x-AuThGaTe-sUbJeCt", true},
		{"X_Authgate_Subject", true},
		{"x_authgate_subject", true},
		{"X_Authgate-Subject", true},
		{"X-Authgate_Subject", true},
		{"X.Authgate.Subject", true},
		{"x.authgate.subject", true},
		{"X.Authgate-Subject", true},
		{"XAuthgateSubject", true},
		{"xauthgatesubject", true},
		{"X-Authgate--Subject", true},
		{"X--Authgate-Subject", true},
		{"-X-Authgate-Subject", true},
		{"X-Authgate-Subject-", true},
		{"_x_authgate_subject_", true},
		{".X-Authgate-Subject.", true},
		{"X~Authgate~Subject", true},
		{"X!Authgate#Subject", true},
		{"X'Authgate'Subject", true},
		{"X|Authgate|Subject", true},
		{"X*Authgate+Subject", true},
		{"X^Authgate`Subject", true},
		{"X$Authgate%Subject&", true},
		{"X Authgate Subject", true},
		{" X-Authgate-Subject", true},
		{"X-Authgate-Subject\t", true},
		{"X-A-Uthgate-Subject", true},
		{"X-Authgate-Anything", true},
		{"X_AUTHGATE_NEW_THING", true},
		{"X-Authgate-Subject2", true},
		{"X-Authgate", true},
		{"X-Authgate-", true},
		{"XAuthgate", true},
		{"X-Authgateway", true},
		{"X-Authgate-\u00e9", true},
		{"X-User-Id", true},
		{"x_user_id", true},
		{"X.User.Id", true},
		{"XUserId", true},
		{"x-user--id", true},
		{"X-USER-ID.", true},
		{"X_Tenant", true},
		{"x.tenant", true},
		{"XTenant", true},
		{"X-Auth", false},
		{"X-Authgat", false},
		{"X-Authgat-Subject", false},
		{"Authgate-Subject", false},
		{"X-Subject", false},
		{"Authorization", false},
		{"X-User", false},
		{"X-User-Ids", false},
		{"X-User-Id2", false},
		{"X-User-Id-Extra", false},
		{"X-Tenant-Id", false},
		{"Tenant", false},
		{"X-Forwarded-For", false},
		{"X-Request-Id", false},
		{"Content-Type", false},
		{"", false},
		{"-", false},
	}
	for _, tt := range tests {
		if got := s.Matches(tt.name); got != tt.strip {
			t.Errorf("Matches(%q): got %v, want %v", tt.name, got, tt.strip)
		}
		h := http.Header{tt.name: {"v"}, "Accept": {"*/*"}}
		wantN := 0
		if tt.strip {
			wantN = 1
		}
		if got := s.Strip(h); got != wantN || len(h) != 2-wantN || h["Accept"] == nil {
			t.Errorf("Strip(%q): got %d removed and %v left, want %d removed", tt.name, got, h, wantN)
		}
	}
}

func TestEquivalent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"X-Authgate-Subject", "X-Authgate-Subject", true},
		{"X-Authgate-Subject", "x_authgate_subject", true},
		{"X-Authgate-Subject.", "X-Authgate-Subject", true},
		{"X-Authgate-Sub.ject", "XAUTHGATESUBJECT", true},
		{"-X-Authgate--Subject-", "x.authgate.subject", true},
		{"X-Authgate-Subject", "X-Authgate-Subjects", false},
		{"X-Authgate-Subjects", "X-Authgate-Subject", false},
		{"X-Authgate-Subject", "X-Authgate-Team", false},
		{"X-Authgate-Subject", "", false},
		{"", "", false},
		{"-", "_", false},
		{"X-\u212aey", "X-Key", false},
	}
	for _, tt := range tests {
		if got := Equivalent(tt.a, tt.b); got != tt.want {
			t.Errorf("Equivalent(%q, %q): got %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := Equivalent(tt.b, tt.a); got != tt.want {
			t.Errorf("Equivalent(%q, %q): got %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestStripNothingToDo(t *testing.T) {
	t.Parallel()
	h := http.Header{"Accept": {"*/*"}}
	if got := NewStripper(nil).Strip(h); got != 0 || len(h) != 1 {
		t.Fatalf("got %d removed and %v left, want 0 and Accept", got, h)
	}
	if got := NewStripper(nil).Strip(nil); got != 0 {
		t.Fatalf("got %d removed from nil, want 0", got)
	}
}

func TestNewStripperNormalises(t *testing.T) {
	t.Parallel()
	s := NewStripper([]string{"X-User", "x_user", "X-USER", "X-Authgate-Foo", ""})
	if want := []string{"xuser"}; !reflect.DeepEqual(s.managed, want) {
		t.Fatalf("got managed %q, want %q", s.managed, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func testHeaders() *config.IdentityHeaders {
	return &config.IdentityHeaders{
		Subject: config.DefaultSubjectHeader, Issuer: config.DefaultIssuerHeader,
		Kind: config.DefaultKindHeader, Scopes: config.DefaultScopesHeader,
		Claims: []config.ClaimHeader{
			{Header: "X-Authgate-Email", Claim: "email"},
			{Header: "X-Authgate-Groups", Claim: "groups"},
			{Header: "X-Authgate-Tier", Claim: "org.tier"},
			{Header: "X-Authgate-Level", Claim: "level"},
			{Header: "X-Authgate-Admin", Claim: "admin"},
			{Header: "X-Authgate-Missing", Claim: "missing"},
			{Header: "X-Authgate-Org", Claim: "org"},
			{Header: "X-Authgate-Null", Claim: "nothing"},
			{Header: "X-Authgate-Role-Url", Claim: "https://example.com/role"},
		},
		ClaimsJSON: "X-Authgate-Claims",
	}
}

func testIdentity(t testing.TB) *identity.Identity {
	raw := []byte(`{"sub":"alice","email":"alice@example.com","groups":["eng","ops"],"org":{"tier":"gold"},"level":3,"admin":false,"nothing":null,"https://example.com/role":"dev"}`)
	var cl map[string]any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&cl); err != nil {
		t.Fatal(err)
	}
	return &identity.Identity{
		Kind: identity.KindJWT, Subject: "alice", Issuer: "https://issuer.example",
		Scopes: []string{"read", "write"}, Claims: cl, RawClaims: raw,
	}
}

func TestInject(t *testing.T) {
	t.Parallel()
	id := testIdentity(t)
	h := http.Header{}
	if err := Inject(h, testHeaders(), id, map[string]string{"X-Authgate-Decision": "ok", "x-authgate-tier": "rego-wins"}); err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	want := http.Header{
		"X-Authgate-Subject":         {"alice"},
		"X-Authgate-Issuer":          {"https://issuer.example"},
		"X-Authgate-Credential-Kind": {"jwt"},
		"X-Authgate-Scopes":          {"read write"},
		"X-Authgate-Email":           {"alice@example.com"},
		"X-Authgate-Groups":          {"eng,ops"},
		"X-Authgate-Tier":            {"rego-wins"},
		"X-Authgate-Level":           {"3"},
		"X-Authgate-Admin":           {"false"},
		"X-Authgate-Role-Url":        {"dev"},
		"X-Authgate-Claims":          {base64.RawURLEncoding.EncodeToString(id.RawClaims)},
		"X-Authgate-Decision":        {"ok"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
}

func TestInjectAPIKey(t *testing.T) {
	t.Parallel()
	id := &identity.Identity{Kind: identity.KindAPIKey, Subject: "ci", KeyName: "ci", Claims: map[string]any{"sub": "ci"}}
	h := http.Header{}
	if err := Inject(h, testHeaders(), id, nil); err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	want := http.Header{
		"X-Authgate-Subject":         {"ci"},
		"X-Authgate-Credential-Kind": {"apikey"},
		"X-Authgate-Scopes":          {""},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
}

func TestInjectIsAtomic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*identity.Identity)
		extra   map[string]string
		wantErr error
	}{
		{"CRLF in subject", func(id *identity.Identity) { id.Subject = "alice\r\nX-Authgate-Admin: true" }, nil, ErrUnsafeValue},
		{"LF in issuer", func(id *identity.Identity) { id.Issuer = "https://i\n" }, nil, ErrUnsafeValue},
		{"NUL in a claim", func(id *identity.Identity) { id.Claims["email"] = "a\x00b" }, nil, ErrUnsafeValue},
		{"control in a list claim", func(id *identity.Identity) { id.Claims["groups"] = []any{"eng", "o\x1bps"} }, nil, ErrUnsafeValue},
		{"comma in a list element", func(id *identity.Identity) { id.Claims["groups"] = []any{"eng", "ops,admin"} }, nil, ErrUnsafeValue},
		{"space in a scope", func(id *identity.Identity) { id.Scopes = []string{"read", "write admin"} }, nil, ErrUnsafeValue},
		{"DEL in a scope", func(id *identity.Identity) { id.Scopes = []string{"re\x7fad"} }, nil, ErrUnsafeValue},
		{"C1 control in subject", func(id *identity.Identity) { id.Subject = "a\u0085b" }, nil, ErrUnsafeValue},
		{"CR in extra", func(*identity.Identity) {}, map[string]string{"X-Authgate-Why": "a\rb"}, ErrUnsafeValue},
		{"invalid extra name", func(*identity.Identity) {}, map[string]string{"X-Authgate Why": "a"}, ErrInvalidName},
		{"protected extra name", func(*identity.Identity) {}, map[string]string{"content-length": "0"}, ErrInvalidName},
		{"protected extra alias", func(*identity.Identity) {}, map[string]string{"X_Forwarded_For": "1.2.3.4"}, ErrInvalidName},
		{"protected extra dotted alias", func(*identity.Identity) {}, map[string]string{"X.Forwarded.For": "1.2.3.4"}, ErrInvalidName},
		{"protected extra squashed alias", func(*identity.Identity) {}, map[string]string{"XRealIP": "1.2.3.4"}, ErrInvalidName},
		{"protected extra padded alias", func(*identity.Identity) {}, map[string]string{"-Authorization-": "Bearer x"}, ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := testIdentity(t)
			tt.mutate(id)
			h := http.Header{"X-Keep": {"1"}}
			err := Inject(h, testHeaders(), id, tt.extra)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if want := (http.Header{"X-Keep": {"1"}}); !reflect.DeepEqual(h, want) {
				t.Fatalf("got headers %v after a failed Inject, want %v", h, want)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x00") {
				t.Fatalf("got error %q holding the value, want only the header name", err)
			}
		})
	}
}

func TestSafeValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"", true}, {"alice", true}, {"a\tb", true}, {"café ☕", true}, {"a b", true},
		{"a\rb", false}, {"a\nb", false}, {"a\x00b", false}, {"a\x1fb", false}, {"a\x7fb", false},
		{"a\u0085b", false}, {"a\u2028b", false}, {"a\u2029b", false}, {"a\xffb", false}, {"\xc3", false},
	}
	for _, tt := range tests {
		if got := SafeValue(tt.in); got != tt.want {
			t.Errorf("SafeValue(%q): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

// There is deliberately no SanitizeConnection: ReverseProxy removes the
// hop-by-hop headers (and any header the client names in Connection) from
// the outbound request before it calls Rewrite, so headers set in Rewrite
// survive a hostile "Connection: X-Authgate-Subject". This test pins that.
func TestInjectedHeadersSurviveHostileConnection(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(upstream.Close)
	target, err := url.Parse(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	strip := NewStripper([]string{"X-User"})
	id := testIdentity(t)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		if err := Inject(pr.Out.Header, testHeaders(), id, nil); err != nil {
			t.Errorf("inject: %v", err)
		}
	}}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		strip.Strip(r.Header)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	req, err := http.NewRequest(http.MethodGet, front.URL+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Connection"] = []string{"X-Authgate-Subject, X-Authgate-Groups, x_authgate_email"}
	req.Header["X-Authgate-Subject"] = []string{"root"}
	req.Header["X_authgate_subject"] = []string{"root"}
	req.Header["X-User"] = []string{"root"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	for name, want := range map[string]string{"X-Authgate-Subject": "alice", "X-Authgate-Groups": "eng,ops", "X-Authgate-Email": "alice@example.com"} {
		if v := h[name]; len(v) != 1 || v[0] != want {
			t.Fatalf("got %s %q, want [%s]", name, v, want)
		}
	}
	if v := h["X-User"]; v != nil {
		t.Fatalf("got spoofed X-User %q, want it stripped", v)
	}
	if v := h["X_authgate_subject"]; v != nil {
		t.Fatalf("got spoofed X_authgate_subject %q, want it stripped", v)
	}
}

func FuzzStrip(f *testing.F) {
	f.Add("X-Authgate-Subject\nx_authgate_email\nAccept\nX-USER\nx_user", "X-User")
	f.Add("X-AUTHGATE-\nX-Authgate\nX-Authgate_", "x_Tenant")
	f.Add("\xff\x00x-authgate-\n", "")
	f.Add("x.authgate.subject\nXAuthgateSubject\nX-Authgate--Subject\n-X-Authgate-Subject-\nX-Authgat", "X.User.Id")
	f.Add("X-User-Id\nX_USER_ID\nXUserId\nX-User-Ids\nX-Auth", "x-user--id")
	f.Fuzz(func(t *testing.T, names, managed string) {
		h := http.Header{}
		for _, n := range strings.Split(names, "\n") {
			h[n] = []string{"v"}
		}
		before := len(h)
		s := NewStripper([]string{managed})
		removed := s.Strip(h)
		if before-len(h) != removed {
			t.Fatalf("got %d removed, want %d", removed, before-len(h))
		}
		m := testNorm(managed)
		for k := range h {
			n := testNorm(k)
			if strings.HasPrefix(n, "xauthgate") || (m != "" && n == m) {
				t.Fatalf("got %q left after Strip (managed %q)", k, managed)
			}
		}
		for _, k := range strings.Split(names, "\n") {
			n := testNorm(k)
			if _, ok := h[k]; !ok && !strings.HasPrefix(n, "xauthgate") && (m == "" || n != m) {
				t.Fatalf("got %q removed, want it kept", k)
			}
			if got, want := Equivalent(k, managed), m != "" && n == m; got != want {
				t.Fatalf("Equivalent(%q, %q): got %v, want %v", k, managed, got, want)
			}
		}
	})
}

// testNorm is the test's own normalisation: ASCII letters in lower case and
// digits; every other byte (punctuation, whitespace, non-ASCII) dropped.
func testNorm(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		}
	}
	return b.String()
}

func FuzzInject(f *testing.F) {
	f.Add("alice", "eng", "o,ps", "x")
	f.Add("a\r\nb", "", "", "\x00")
	f.Fuzz(func(t *testing.T, sub, g1, g2, extra string) {
		id := &identity.Identity{Kind: identity.KindJWT, Subject: sub, Scopes: []string{g1},
			Claims: map[string]any{"groups": []any{g1, g2}}}
		h := http.Header{}
		err := Inject(h, testHeaders(), id, map[string]string{"X-Authgate-Extra": extra})
		if err != nil {
			if len(h) != 0 {
				t.Fatalf("got %v set after error %v, want nothing", h, err)
			}
			return
		}
		for k, vs := range h {
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) || strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("got unsafe value %q for %s", v, k)
				}
			}
		}
	})
}

func BenchmarkStrip(b *testing.B) {
	s := NewStripper([]string{"X-Authgate-Subject", "X-Authgate-Issuer", "X-Authgate-Credential-Kind", "X-Authgate-Scopes", "X-User-Id"})
	src := http.Header{
		"Accept": {"*/*"}, "Accept-Encoding": {"gzip"}, "Authorization": {"Bearer x"}, "Content-Type": {"application/json"},
		"User-Agent": {"bench"}, "X-Request-Id": {"abc"}, "Content-Length": {"12"}, "Traceparent": {"00-1-2-01"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if s.Strip(src) != 0 {
			b.Fatal("stripped a clean header")
		}
	}
}

func BenchmarkInject(b *testing.B) {
	id := testIdentity(b)
	m := &config.IdentityHeaders{
		Subject: config.DefaultSubjectHeader, Issuer: config.DefaultIssuerHeader,
		Kind: config.DefaultKindHeader, Scopes: config.DefaultScopesHeader,
		Claims: []config.ClaimHeader{{Header: "X-Authgate-Email", Claim: "email"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, 8)
		if err := Inject(h, m, id, nil); err != nil {
			b.Fatal(err)
		}
	}
}
