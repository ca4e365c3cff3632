package topology

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

// Loopback addresses of the clients behind the hop; the hop itself and the
// sidecar's peer are 127.0.0.1, the only trusted proxy.
const (
	aliceAddr    = "127.0.0.2"
	partnerAddr  = "127.0.0.3"
	bobAddr      = "127.0.0.4"
	attackerAddr = "127.0.0.5"
)

const lockoutPolicy = `metadata: {name: orders}
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: ISSUER, audiences: [shop-api]}]
    apiKeys: {secretNames: [partner]}
  routes: [{paths: ["/**"]}]`

const partnerKey = "partner-key-0123456789abcdefgh"

// TestOneAttackerCannotLockOutOthers: behind one hop (queue-proxy on
// loopback, with the ingress' X-Forwarded-For chain), an attacker sends
// 1,000 bad credentials of every kind while three other clients send valid
// JWTs and an API key. Every valid request is answered 200 and reaches the
// function with its own identity; the attacker is throttled (429); the
// attack causes no JWKS fetch; and a valid JWT sent from the attacker's own
// address (a user behind the same NAT) is never refused.
func TestOneAttackerCannotLockOutOthers(t *testing.T) {
	t.Parallel()
	iss := newIDP(t)
	cfg := render(t, iss, true, []corev1.Secret{apiKeySecret("partner", partnerKey)}, lockoutPolicy)
	orders := deploy(t, "orders", cfg, ordersPod, "127.0.0.1/32")
	front := hop(t, orders.proxy.URL)

	alice := iss.token(t, map[string]any{"sub": "alice", "aud": "shop-api"})
	bob := iss.token(t, map[string]any{"sub": "bob", "aud": "shop-api"})
	neighbour := iss.token(t, map[string]any{"sub": "neighbour", "aud": "shop-api"})
	bad, unknownKID := badCredentials(t, iss)

	const validPerClient, attacks = 150, 1000
	type tally struct {
		mu    sync.Mutex
		codes map[string]map[int]int
	}
	got := &tally{codes: map[string]map[int]int{}}
	record := func(who string, code int) {
		got.mu.Lock()
		defer got.mu.Unlock()
		if got.codes[who] == nil {
			got.codes[who] = map[int]int{}
		}
		got.codes[who][code]++
	}
	var wg sync.WaitGroup
	valid := func(who, addr string, hdr ...string) {
		c := clientFrom(addr)
		wg.Go(func() {
			for range validPerClient {
				record(who, call(t, c, front.URL, "/orders/1", hdr...).status)
			}
		})
	}
	valid("alice", aliceAddr, "Authorization", "Bearer "+alice)
	valid("partner", partnerAddr, "X-API-Key", partnerKey)
	valid("bob", bobAddr, "Authorization", "Bearer "+bob)
	atk := clientFrom(attackerAddr)
	wg.Go(func() {
		for i := range attacks {
			record("attacker", call(t, atk, front.URL, "/orders/1", bad[i%len(bad)]...).status)
			if i%10 == 0 {
				// A user sharing the attacker's address.
				record("neighbour", call(t, atk, front.URL, "/orders/1", "Authorization", "Bearer "+neighbour).status)
			}
		}
	})
	wg.Wait()

	for _, who := range []string{"alice", "partner", "bob", "neighbour"} {
		if c := got.codes[who]; len(c) != 1 || c[http.StatusOK] == 0 {
			t.Errorf("%s: got answers %v, want every request 200", who, c)
		}
	}
	atkCodes := got.codes["attacker"]
	if atkCodes[http.StatusTooManyRequests] < attacks*9/10 || atkCodes[http.StatusOK] != 0 {
		t.Errorf("attacker: got answers %v, want at least %d of %d throttled (429) and none allowed", atkCodes, attacks*9/10, attacks)
	}
	if n := iss.JWKSRequests(); n != 0 {
		t.Errorf("the attack caused %d JWKS fetches, want 0", n)
	}
	// Key ids the IdP never published could be a rotation, so an unthrottled
	// client's may fetch: the throttled attacker's are refused unchecked, and
	// the odd one admitted as its bucket refills stays within the key set's
	// refetch budget (3 per cooldown).
	refused := 0
	for range 100 {
		if call(t, atk, front.URL, "/orders/1", unknownKID...).status == http.StatusTooManyRequests {
			refused++
		}
	}
	if n := iss.JWKSRequests(); refused < 95 || n > 3 {
		t.Errorf("unknown key ids from the throttled attacker: %d of 100 refused with 429 and %d JWKS fetches, want ≥ 95 and ≤ 3", refused, n)
	}
	checkSubjects(t, orders, map[string]int{"alice": validPerClient, "bob": validPerClient, "partner": validPerClient, "neighbour": attacks / 10})
	if n := testutil.ToFloat64(orders.metrics.RateLimited.WithLabelValues("auth_failures")); n < attacks*9/10 {
		t.Errorf("authgate_rate_limited_total{limiter=auth_failures} = %v, want ≥ %d", n, attacks*9/10)
	}
}

// checkSubjects: the function saw exactly the valid requests, each with the
// subject of the client that sent it, and the client's own address as the
// first X-Forwarded-For entry.
func checkSubjects(t *testing.T, p *pod, want map[string]int) {
	t.Helper()
	addrOf := map[string]string{"alice": aliceAddr, "bob": bobAddr, "partner": partnerAddr, "neighbour": attackerAddr}
	seen := map[string]int{}
	for _, rec := range p.fn.Received() {
		sub := http.Header(rec.Headers).Get("X-Authgate-Subject")
		seen[sub]++
		if xff := http.Header(rec.Headers).Get("X-Forwarded-For"); !strings.HasPrefix(xff, addrOf[sub]) {
			t.Errorf("%s: function got X-Forwarded-For %q, want it to start with the client %s", sub, xff, addrOf[sub])
			return
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("function saw subjects %v, want exactly %v (no attacker request reaches it)", seen, want)
	}
}

// badCredentials are what an attacker sends: tokens signed by its own key
// with the IdP's key id, garbage, an expired and a foreign-issuer token,
// made-up API keys, an empty bearer token; and (unknownKID) a token with a
// key id the IdP never published, which would make an unthrottled client's
// sidecar look for a rotated key.
func badCredentials(t *testing.T, iss *idp) (bad [][]string, unknownKID []string) {
	t.Helper()
	forged := forge(t, iss.KeyID(devissuer.ES256), map[string]any{"sub": "admin", "aud": "shop-api", "iss": iss.URL()})
	expired := iss.token(t, map[string]any{"sub": "alice", "aud": "shop-api", "exp": time.Now().Add(-time.Hour).Unix()})
	foreign := iss.token(t, map[string]any{"sub": "alice", "aud": "shop-api", "iss": "https://evil.example/"})
	unknown := forge(t, "kid-the-idp-never-published", map[string]any{"sub": "admin", "aud": "shop-api", "iss": iss.URL()})
	bad = [][]string{
		{"Authorization", "Bearer " + forged},
		{"Authorization", "Bearer not.a.jwt"},
		{"Authorization", "Bearer " + expired},
		{"Authorization", "Bearer " + foreign},
		{"X-API-Key", "guess-" + strings.Repeat("a", 24)},
		{"X-API-Key", "guess-" + strings.Repeat("b", 24)},
		{"Authorization", "Bearer "},
	}
	return bad, []string{"Authorization", "Bearer " + unknown}
}

// forge signs claims with a key the IdP never issued.
func forge(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestIdPOutageIsNotTheClientsFault: while the IdP is down and no keys are
// known (the controller could not fetch them either), valid tokens are
// answered 503 with Retry-After, never 401, and never count against the
// clients: no client is throttled however many times it retries.
func TestIdPOutageIsNotTheClientsFault(t *testing.T) {
	t.Parallel()
	iss := newIDP(t)
	iss.srv.Set(faultidp.All, faultidp.Down)
	cfg := render(t, iss, false, nil, ordersPolicyNoKeys)
	orders := deploy(t, "orders", cfg, ordersPod, "127.0.0.1/32")
	front := hop(t, orders.proxy.URL)
	c := clientFrom(aliceAddr)
	tok := iss.token(t, map[string]any{"sub": "alice", "aud": "shop-api", "scope": "orders:read"})
	for i := range 100 {
		got := call(t, c, front.URL, "/orders/1", "Authorization", "Bearer "+tok)
		if got.status != http.StatusServiceUnavailable || got.reason != "keys_unavailable" || got.header.Get("Retry-After") == "" {
			t.Fatalf("request %d during the outage: got %d %q (Retry-After %q), want 503 keys_unavailable with Retry-After",
				i, got.status, got.reason, got.header.Get("Retry-After"))
		}
	}
	if orders.fn.Count() != 0 {
		t.Fatal("the function was called while no keys were available")
	}
	if n := testutil.ToFloat64(orders.metrics.RateLimited.WithLabelValues("auth_failures")); n != 0 {
		t.Fatalf("got %v auth-failure throttles, want 0: an outage is not the client's failure", n)
	}
	// The IdP answers again: the same client's token is accepted (the key
	// set retries a keyless issuer within about a second; bound generous).
	iss.srv.Set(faultidp.All, faultidp.None)
	wait.ForNil(t, 20*time.Second, func() error {
		got := call(t, c, front.URL, "/orders/1", "Authorization", "Bearer "+tok)
		if got.status != http.StatusOK && got.status != http.StatusServiceUnavailable {
			t.Fatalf("after the IdP recovered: got %d %q, want 503 until the keys load, then 200", got.status, got.reason)
		}
		if got.status != http.StatusOK {
			return fmt.Errorf("got %d %q", got.status, got.reason)
		}
		return nil
	}, "the token accepted after the IdP recovered (503 until the keys load, then 200)")
	if rec, _ := orders.fn.Last(); http.Header(rec.Headers).Get("X-Authgate-Subject") != "alice" {
		t.Fatalf("the function got subject %q, want alice", http.Header(rec.Headers).Get("X-Authgate-Subject"))
	}
}

const ordersPolicyNoKeys = `metadata: {name: orders}
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: ISSUER, audiences: [shop-api]}]
  routes: [{paths: ["/**"], requireScopes: ["orders:read"]}]`
