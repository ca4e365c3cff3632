package jwks

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/testca"
)

func policy(t *testing.T, allow string) *netguard.Policy {
	t.Helper()
	list, err := netguard.ParseList(allow)
	if err != nil {
		t.Fatal(err)
	}
	p, err := netguard.New(list, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

func guardedKeySet(t *testing.T, iss config.Issuer, p *netguard.Policy) *KeySet {
	t.Helper()
	ks, err := New(Options{Issuer: iss, FetchPolicy: p, Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// wantDenied checks err is the policy refusing addr for reason.
func wantDenied(t *testing.T, err error, addr, reason string) {
	t.Helper()
	var de *netguard.DeniedError
	if !errors.As(err, &de) || de.Addr != netip.MustParseAddr(addr) || de.Reason != reason {
		t.Fatalf("got %v, want %s refused by the fetch policy (%s)", err, addr, reason)
	}
	if strings.Contains(err.Error(), "dial tcp") {
		t.Fatalf("got %q, want the refusal without the dial error around it", err)
	}
}

// A guarded key set refuses the loopback IdP every test uses by default,
// and fetches from it once an allow entry covers it: through jwksURL, through
// discovery, and with a CA bundle (whose transport is a clone of the
// guarded one).
func TestFetchPolicyGuardsEveryClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		tls      bool
		discover bool
	}{
		{name: "jwksURL"},
		{name: "discovery", discover: true},
		{name: "CA bundle", tls: true},
		{name: "CA bundle, discovery", tls: true, discover: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Each case has an IdP of its own: the parallel cases' allowed
			// fetches would otherwise show up in this case's count.
			idp, bundle := faultidp.New(t), ""
			if tt.tls {
				ca := testca.New(t)
				idp, bundle = faultidp.NewTLS(t, ca), ca.PEM
			}
			iss := issuerConfig(idp.URL, func(i *config.Issuer) {
				i.CABundle = bundle
				if tt.discover {
					useDiscovery(i)
				}
			})
			err := guardedKeySet(t, iss, &netguard.Policy{}).Refresh(t.Context())
			wantDenied(t, err, "127.0.0.1", "loopback")
			if n := idp.Hits(faultidp.All); n != 0 {
				t.Fatalf("got %d requests at the IdP, want the connection refused before any", n)
			}
			if err := guardedKeySet(t, iss, policy(t, "127.0.0.0/8,::1")).Refresh(t.Context()); err != nil {
				t.Fatalf("got %v, want the keys fetched with loopback allowed", err)
			}
		})
	}
}

// Redirects and a discovered jwks_uri are checked too: the address each
// hop connects to, not the URL the policy author wrote.
func TestFetchPolicyChecksEveryHop(t *testing.T) {
	t.Parallel()
	// 127.0.0.2 is loopback as well; only 127.0.0.1 is allowed.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	var denied atomic.Int64
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		denied.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	target.Listener = ln
	target.StartTLS()
	t.Cleanup(target.Close)

	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		d := iss.DiscoveryDocument()
		d.JWKSURI = target.URL + "/jwks"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/jwks", http.StatusFound)
	})
	allowed := httptest.NewServer(mux)
	t.Cleanup(allowed.Close)
	iss.SetURL(allowed.URL)

	only := policy(t, "127.0.0.1")
	tests := []struct {
		name string
		iss  config.Issuer
	}{
		{"redirect", issuerConfig(allowed.URL, func(i *config.Issuer) { i.JWKSURL = allowed.URL + "/redirect" })},
		{"discovered jwks_uri", issuerConfig(allowed.URL, useDiscovery)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := guardedKeySet(t, tt.iss, only).Refresh(t.Context())
			wantDenied(t, err, "127.0.0.2", "loopback")
		})
	}
	if n := denied.Load(); n != 0 {
		t.Fatalf("got %d requests at the refused address, want none", n)
	}
}

// The check is on the address a name resolves to: "localhost" is refused as
// loopback although the URL names no address.
func TestFetchPolicyChecksTheResolvedAddress(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(idp.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	byName := "http://localhost:" + port
	err = guardedKeySet(t, issuerConfig(byName), &netguard.Policy{}).Refresh(t.Context())
	var de *netguard.DeniedError
	if !errors.As(err, &de) || de.Reason != "loopback" {
		t.Fatalf("got %v, want the resolved loopback address refused", err)
	}
	if !de.Addr.IsLoopback() {
		t.Fatalf("got address %s refused, want a resolved loopback address", de.Addr)
	}
}

// A guarded client never goes through an environment proxy (which would
// reach the target unchecked); an unguarded one (the proxy sidecar's)
// still does, as before.
func TestFetchPolicyIgnoresEnvironmentProxies(t *testing.T) {
	t.Parallel()
	iss := issuerConfig("https://idp.example.com")
	if tr := guardedKeySet(t, iss, &netguard.Policy{}).client.Transport.(*http.Transport); tr.Proxy != nil {
		t.Fatal("got a guarded transport with a proxy function, want none")
	}
	if tr := guardedKeySet(t, iss, nil).client.Transport.(*http.Transport); tr.Proxy == nil {
		t.Fatal("got an unguarded transport without the environment's proxy, want it unchanged")
	}
}

// A policy cannot be applied to a caller's client: New refuses both.
func TestFetchPolicyRefusesACallersClient(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Issuer: issuerConfig("https://idp.example.com"), HTTPClient: &http.Client{}, FetchPolicy: &netguard.Policy{},
		Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "fetch policy") {
		t.Fatalf("got %v, want HTTPClient with FetchPolicy refused", err)
	}
}

// Errors name the status code and content type of a bad response, never a
// byte of its body: they land in AuthPolicy status and the admin endpoint.
func TestFetchErrorsDoNotEchoTheBody(t *testing.T) {
	t.Parallel()
	const marker = "SECRET-BODY-MARKER"
	tests := []struct {
		name, contentType string
		status            int
		body, want        string
		discover          bool
	}{
		{"error page", "text/html", http.StatusInternalServerError, "<html>" + marker + "</html>", `unexpected status 500 (content type "text/html")`, false},
		{"no content type", "", http.StatusForbidden, marker, "unexpected status 403 (no content type)", false},
		{"content type parameters", "text/plain; note=" + marker, http.StatusNotFound, marker, `unexpected status 404 (content type "text/plain")`, false},
		{"invalid content type", marker + "/", http.StatusNotFound, marker, "unexpected status 404 (an invalid content type)", false},
		{"html key set", "text/html", http.StatusOK, "<html>" + marker, `jwks: parse key set: not the expected JSON document: invalid JSON at byte 1 (content type "text/html")`, false},
		{"wrong JSON type", "application/json", http.StatusOK, `{"keys":"` + marker + `"}`, "jwks: parse key set: not the expected JSON document", false},
		{"html discovery", "text/html", http.StatusOK, marker, "discovery: parse document: not the expected JSON document", true},
		{"other issuer", "application/json", http.StatusOK, `{"issuer":"https://` + marker + `","jwks_uri":"https://x/jwks"}`, "document issuer does not equal issuerURL", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				} else {
					w.Header()["Content-Type"] = nil // no sniffing either
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			iss := issuerConfig(srv.URL)
			if tt.discover {
				iss = issuerConfig(srv.URL, useDiscovery)
			}
			err := newKeySet(t, iss).ks.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("got %q, want no part of the body in the error", err)
			}
		})
	}
}

// A peer that does not speak HTTP is reported without its banner, which
// net/http's error would quote.
func TestFetchErrorsDoNotEchoABanner(t *testing.T) {
	t.Parallel()
	const banner = "SSH-2.0-SECRET-BANNER"
	for _, reply := range []string{banner + "\r\n", "HTTP/1.1 200 OK\r\n" + banner + "\r\n\r\n"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// Answer after the request: a banner sent before it
				// reaches an idle connection, which net/http reports
				// differently (and also without the bytes).
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = c.Write([]byte(reply))
				_ = c.Close()
			}
		}()
		err = newKeySet(t, issuerConfig("http://"+ln.Addr().String())).ks.Refresh(t.Context())
		if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "malformed HTTP response") {
			t.Fatalf("got %v, want a malformed response reported without the peer's bytes", err)
		}
	}
}
