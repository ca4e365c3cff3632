// Command assertion-verifier is an example function that trusts only the
// identity its authgate sidecar signed: it verifies the identity assertion
// (X-Authgate-Assertion) with go-oidc against the sidecar's loopback JWKS,
// checks iss and aud, and echoes the verified subject. A request that
// reaches it around the sidecar carries no valid assertion and gets 401.
//
// Environment:
//
//	ASSERTION_ISSUER    authgate://<namespace> (required)
//	ASSERTION_AUDIENCE  the policy's identityAssertion.audience, default
//	                    the AuthPolicy's name (required)
//	ASSERTION_JWKS_URL  default http://127.0.0.1:8093/.well-known/authgate/assertion-jwks.json
//	                    (the sidecar's admin port; the injector's default is 8093)
//	ASSERTION_HEADER    default X-Authgate-Assertion
//	PORT                default 8080
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Options configure the verifier.
type Options struct {
	Issuer, Audience, JWKSURL, Header string
	// Now is the verifier's clock; nil is time.Now.
	Now func() time.Time
}

// Claims are the assertion's claims the example reads.
type Claims struct {
	Subject     string         `json:"sub"`
	Kind        string         `json:"kind"`
	TokenIssuer string         `json:"token_iss"`
	Scope       string         `json:"scope"`
	Claims      map[string]any `json:"claims"`
}

// Handler verifies every request's assertion and answers its subject.
func Handler(ctx context.Context, o Options) http.Handler {
	// RemoteKeySet fetches the JWKS on first use and again when a token
	// names a key it does not hold (the sidecar's ring rotated).
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(ctx, &http.Client{Timeout: 5 * time.Second}), o.JWKSURL)
	v := oidc.NewVerifier(o.Issuer, keys, &oidc.Config{ClientID: o.Audience, SupportedSigningAlgs: []string{oidc.ES256}, Now: o.Now})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		vals := r.Header.Values(o.Header)
		if len(vals) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "want exactly one identity assertion"})
			return
		}
		tok, err := v.Verify(r.Context(), vals[0])
		var c Claims
		if err == nil {
			err = tok.Claims(&c)
		}
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid identity assertion"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"subject": c.Subject, "kind": c.Kind, "token_issuer": c.TokenIssuer, "scope": c.Scope})
	})
}

func main() {
	o := Options{
		Issuer: os.Getenv("ASSERTION_ISSUER"), Audience: os.Getenv("ASSERTION_AUDIENCE"),
		JWKSURL: getenv("ASSERTION_JWKS_URL", "http://127.0.0.1:8093/.well-known/authgate/assertion-jwks.json"),
		Header:  getenv("ASSERTION_HEADER", "X-Authgate-Assertion"),
	}
	if o.Issuer == "" || o.Audience == "" {
		slog.Error("ASSERTION_ISSUER and ASSERTION_AUDIENCE are required")
		os.Exit(1)
	}
	srv := &http.Server{Addr: ":" + getenv("PORT", "8080"), Handler: Handler(context.Background(), o), ReadHeaderTimeout: 10 * time.Second}
	slog.Info("assertion-verifier listening", "address", srv.Addr, "issuer", o.Issuer, "audience", o.Audience)
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("serve", "error", err.Error())
		os.Exit(1)
	}
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
