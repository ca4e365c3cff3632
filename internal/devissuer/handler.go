package devissuer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxFormBytes caps a /token request body.
const maxFormBytes = 64 << 10

// maxTTL caps the lifetime a /token caller may ask for.
const maxTTL = 24 * time.Hour

// Discovery is the subset of the OIDC discovery document the issuer serves.
type Discovery struct {
	// Issuer is the issuer URL, equal to the iss claim.
	Issuer string `json:"issuer"`
	// JWKSURI is where the public keys are served.
	JWKSURI string `json:"jwks_uri"`
	// TokenEndpoint mints tokens.
	TokenEndpoint string `json:"token_endpoint"`
	// ResponseTypes supported.
	ResponseTypes []string `json:"response_types_supported"`
	// SubjectTypes supported.
	SubjectTypes []string `json:"subject_types_supported"`
	// SigningAlgs are the algorithms tokens are signed with.
	SigningAlgs []string `json:"id_token_signing_alg_values_supported"`
	// GrantTypes supported.
	GrantTypes []string `json:"grant_types_supported"`
	// ClaimsSupported lists the standard claims minted.
	ClaimsSupported []string `json:"claims_supported"`
	// TokenEndpointAuthMeths: the token endpoint needs no client auth.
	TokenEndpointAuthMeths []string `json:"token_endpoint_auth_methods_supported"`
}

// Handler serves GET /.well-known/openid-configuration, GET /jwks, and GET
// or POST /token, which mints a token from form or query parameters: sub,
// aud, scope, ttl (Go duration or seconds, at most 24h), alg, and
// claim.<name>=value (a value that parses as JSON is used as JSON, anything
// else as a string). It answers {"access_token": ..., "token_type":
// "Bearer", "expires_in": seconds}.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET /jwks", i.serveJWKS)
	mux.HandleFunc("GET /token", i.serveToken)
	mux.HandleFunc("POST /token", i.serveToken)
	return mux
}

// DiscoveryDocument returns the document served at
// /.well-known/openid-configuration.
func (i *Issuer) DiscoveryDocument() Discovery {
	u := i.URL()
	return Discovery{
		Issuer:                 u,
		JWKSURI:                u + "/jwks",
		TokenEndpoint:          u + "/token",
		ResponseTypes:          []string{"token"},
		SubjectTypes:           []string{"public"},
		SigningAlgs:            []string{RS256, ES256},
		GrantTypes:             []string{"client_credentials"},
		ClaimsSupported:        []string{"iss", "sub", "aud", "exp", "iat", "scope"},
		TokenEndpointAuthMeths: []string{"none"},
	}
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, i.DiscoveryDocument())
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.jwksRequests.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, i.PublicJWKS())
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, fmt.Errorf("parse form: %w", err))
		return
	}
	claims, ttl, err := i.tokenRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	alg := r.Form.Get("alg")
	if alg == "" {
		alg = RS256
	}
	tok, err := i.Mint(claims, WithAlg(alg))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int64(ttl / time.Second),
	})
}

// tokenRequest turns /token parameters into claims.
func (i *Issuer) tokenRequest(r *http.Request) (map[string]any, time.Duration, error) {
	ttl := DefaultTTL
	if s := r.Form.Get("ttl"); s != "" {
		d, err := parseTTL(s)
		if err != nil {
			return nil, 0, err
		}
		ttl = d
	}
	claims := map[string]any{}
	for name, values := range r.Form {
		cname, ok := strings.CutPrefix(name, "claim.")
		if !ok || cname == "" || len(values) == 0 {
			continue
		}
		claims[cname] = claimValue(values[len(values)-1])
	}
	for _, name := range []string{"sub", "aud", "scope"} {
		if v := r.Form.Get(name); v != "" {
			claims[name] = v
		}
	}
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = i.now().Add(ttl).Unix()
	}
	return claims, ttl, nil
}

func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, err2 := strconv.ParseInt(s, 10, 64)
		if err2 != nil {
			return 0, fmt.Errorf("ttl must be a duration like 10m or a number of seconds, got %q", s)
		}
		d = time.Duration(secs) * time.Second
	}
	if d <= 0 || d > maxTTL {
		return 0, fmt.Errorf("ttl must be between 1s and %s", maxTTL)
	}
	return d, nil
}

// claimValue reads a claim parameter as JSON when it is valid JSON (numbers,
// booleans, arrays, objects), otherwise as a string.
func claimValue(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil && v != nil {
		return v
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
}
