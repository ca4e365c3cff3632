package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/config"
)

// throttled returns an env whose only client (the test's loopback peer) has
// used up its auth-failure burst with bad API keys.
func throttled(t *testing.T, opts ...envOption) *env {
	t.Helper()
	opts = append(opts, func(c *config.ProxyConfig) {
		c.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 1, Burst: 3}
		c.APIKeys.Keys = append(c.APIKeys.Keys, config.APIKey{Name: "spare", Hash: hashOf(spareKey), Scopes: []string{"orders:read"}})
	})
	e := newEnv(t, opts...)
	for i := range 3 {
		e.get("/orders/1", "X-API-Key", "guess-"+strings.Repeat("x", 20+i)).mustDeny(t, 401, "unknown_api_key")
	}
	e.get("/orders/1", "X-API-Key", "guess-one-more-xxxxxxxxxxxxxxx").mustDeny(t, 429, "auth_failures")
	return e
}

const spareKey = "spare-key-0123456789abcdefghij"

// TestThrottledClientKeepsValidCredentials: a throttled client's credential
// that verifies from what the proxy already knows still passes: a JWT whose
// key id is loaded (cached or not), an API key that verified before. A key
// never seen before is refused unchecked (guessing stays throttled), and an
// unknown key id causes no fetch.
func TestThrottledClientKeepsValidCredentials(t *testing.T) {
	t.Parallel()
	e := throttled(t)
	rec := e.get("/orders/1", bearer(e.mint(map[string]any{"sub": "fresh"}))...).mustForward(t)
	if got := header(rec, "X-Authgate-Subject"); len(got) != 1 || got[0] != "fresh" {
		t.Fatalf("got subject %v, want [fresh]", got)
	}
	e.get("/orders/1", bearer(e.mint(map[string]any{"sub": "x"}, kidOpt(7)))...).mustDeny(t, 429, "auth_failures")
	if n := e.issuer.JWKSRequests(); n != 0 {
		t.Fatalf("a throttled client caused %d JWKS requests, want 0", n)
	}
	// The spare key never verified before: refused unchecked while throttled.
	e.get("/orders/1", "X-API-Key", spareKey).mustDeny(t, 429, "auth_failures")
}

// TestThrottledClientKeepsKnownAPIKey: an API key that verified before the
// client was throttled (e.g. another user behind the same address) passes.
func TestThrottledClientKeepsKnownAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 1, Burst: 2}
	})
	e.get("/orders/1", "X-API-Key", partnerKey).mustForward(t)
	for range 2 {
		e.get("/orders/1", bearer("a.b.c")...).mustDeny(t, 401, "invalid_token")
	}
	e.get("/orders/1", bearer("a.b.c")...).mustDeny(t, 429, "auth_failures")
	e.get("/orders/1", "X-API-Key", partnerKey).mustForward(t)
}

// TestMissingAndUnacceptedCredentialsDoNotCount: requests without a
// credential, or with one the policy does not accept, cost nothing and never
// throttle the client.
func TestMissingAndUnacceptedCredentialsDoNotCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 1, Burst: 2}
	})
	for range 20 {
		e.get("/orders/1").mustDeny(t, 401, "missing_credential")
	}
	e.get("/orders/1", bearer("a.b.c")...).mustDeny(t, 401, "invalid_token")
}

// TestSecondCredentialInAnUnreadPlace: RFC 6750 allows one method per
// request; a credential in a standard place the config does not read, next
// to the one it reads, is refused with 400 and never forwarded.
func TestSecondCredentialInAnUnreadPlace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.mint(nil)
	e.get("/orders/1?access_token=other", bearer(tok)...).mustDeny(t, 400, "ambiguous_credential")
	e.get("/orders/1?access%5Ftoken=other", "X-API-Key", partnerKey).mustDeny(t, 400, "ambiguous_credential")
	e.get("/orders/1", "X-API-Key", partnerKey, "Authorization", "Basic YTpi").mustDeny(t, 400, "ambiguous_credential")

	form := func(body string, hdr ...string) result {
		req, err := http.NewRequest(http.MethodPost, e.proxy.URL+"/orders/1", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return e.do(req)
	}
	form("a=1&access_token=other", bearer(tok)...).mustDeny(t, 400, "ambiguous_credential")
	form(url.Values{"access_token": {"other"}}.Encode(), "X-API-Key", partnerKey).mustDeny(t, 400, "ambiguous_credential")
	rec := form("a=1&b=access_token", bearer(tok)...).mustForward(t)
	if rec.BodySize != int64(len("a=1&b=access_token")) {
		t.Fatalf("the function got a body of %d bytes, want the form intact", rec.BodySize)
	}
	// A bad credential never makes the proxy read the body.
	form("access_token=other", bearer("a.b.c")...).mustDeny(t, 401, "invalid_token")
	form(strings.Repeat("a=1&", 300_000), bearer(tok)...).mustDeny(t, 413, "body_too_large")
}

func hashOf(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestUnverifiedCredentialNeverMakesTheProxyReadABody: on a public route a
// credential is not verified, so a form body beside it is forwarded as it
// is, however large, and never read (or refused) by the proxy.
func TestUnverifiedCredentialNeverMakesTheProxyReadABody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := "access_token=x&" + strings.Repeat("a=1&", 300_000)
	req, err := http.NewRequest(http.MethodPost, e.proxy.URL+"/healthz", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.mint(nil))
	rec := e.do(req).mustForward(t)
	if rec.BodySize != int64(len(body)) {
		t.Fatalf("the function got %d body bytes, want the %d sent", rec.BodySize, len(body))
	}
}
