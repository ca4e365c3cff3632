package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/urlrule"
)

// maxRedirects a fetch may follow.
const maxRedirects = 3

// newClient returns a copy of base (or a dedicated client) whose redirects
// are limited and must stay on https or loopback http. With roots, the
// client trusts exactly those CAs instead of the system roots: base's
// transport is cloned with RootCAs replaced, and a base whose transport is
// not an *http.Transport is refused, since roots could not be applied to it
// (fail closed rather than fall back to the system roots).
func newClient(base *http.Client, timeout time.Duration, roots *x509.CertPool) (*http.Client, error) {
	var c http.Client
	if base != nil && (roots == nil || base.Transport != nil) {
		c = *base
	} else {
		c = http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				Proxy:                  http.ProxyFromEnvironment,
				DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout:    timeout,
				ResponseHeaderTimeout:  timeout,
				MaxIdleConns:           4,
				MaxIdleConnsPerHost:    2,
				IdleConnTimeout:        90 * time.Second,
				MaxResponseHeaderBytes: 64 << 10,
				ForceAttemptHTTP2:      true,
			},
		}
		if base != nil && base.Timeout > 0 {
			c.Timeout = base.Timeout
		}
	}
	if roots != nil {
		t, ok := c.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("a CA bundle needs an *http.Transport to apply to, got %T", c.Transport)
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		t.TLSClientConfig.RootCAs = roots
		t.TLSClientConfig.MinVersion = max(t.TLSClientConfig.MinVersion, tls.VersionTLS12)
		c.Transport = t
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return urlrule.Fetch(req.URL)
	}
	return &c, nil
}

// get fetches u with the fetch timeout covering the whole exchange,
// requires 200 and refuses bodies over Fetch.MaxBytes. It returns the body
// and the response headers.
func (k *KeySet) get(ctx context.Context, what, u string) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, k.fetch.Timeout.Duration)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: build request: %w", what, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, unwrapURLError(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: unexpected status %d", what, resp.StatusCode)
	}
	limit := k.fetch.MaxBytes
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("%s: response of %d bytes exceeds the %d byte limit", what, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read body: %w", what, unwrapURLError(err))
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("%s: response exceeds the %d byte limit", what, limit)
	}
	return body, resp.Header, nil
}

// unwrapURLError drops the URL from net/http errors: a configured URL may
// carry credentials in its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// fetchKeys resolves the JWKS URL (discovering it when needed) and returns
// the usable keys it serves with the response's freshness lifetime.
func (k *KeySet) fetchKeys(ctx context.Context) ([]jose.JSONWebKey, lifetime, error) {
	uri := k.jwksURL
	if uri == "" {
		k.mu.Lock()
		uri = k.discovered
		k.mu.Unlock()
		if uri == "" {
			var err error
			if uri, err = k.discover(ctx); err != nil {
				return nil, lifetime{}, err
			}
			k.mu.Lock()
			k.discovered = uri
			k.mu.Unlock()
		}
	}
	keys, life, err := k.fetchSet(ctx, uri)
	if err != nil && k.jwksURL == "" {
		// The issuer may have moved its keys: discover again next time.
		k.mu.Lock()
		k.discovered = ""
		k.mu.Unlock()
	}
	return keys, life, err
}

// discover reads the issuer's OIDC discovery document and returns its
// jwks_uri. The document's issuer must equal the configured one exactly.
func (k *KeySet) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(k.issuerURL, "/") + "/.well-known/openid-configuration"
	body, _, err := k.get(ctx, "discovery", u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: parse document: %w", err)
	}
	if doc.Issuer != k.issuerURL {
		return "", fmt.Errorf("discovery: document issuer %q does not equal issuerURL %q", clip(doc.Issuer), k.issuerURL)
	}
	ju, err := url.Parse(doc.JWKSURI)
	if err != nil || doc.JWKSURI == "" {
		return "", errors.New("discovery: missing or invalid jwks_uri")
	}
	if err := urlrule.Fetch(ju); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

// clip shortens a remote-supplied string for an error message.
func clip(s string) string {
	const limit = 128
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// fetchSet fetches and filters one JWKS; zero usable keys is a failure.
func (k *KeySet) fetchSet(ctx context.Context, uri string) ([]jose.JSONWebKey, lifetime, error) {
	body, header, err := k.get(ctx, "jwks", uri)
	if err != nil {
		return nil, lifetime{}, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, lifetime{}, fmt.Errorf("jwks: parse key set: %w", err)
	}
	keys, dropped := k.usableKeys(set.Keys)
	if dropped > 0 {
		k.log.Warn("jwks: dropped unusable keys", "issuer", k.name, "dropped", dropped, "kept", len(keys))
	}
	if len(keys) == 0 {
		return nil, lifetime{}, fmt.Errorf("jwks: key set of %d keys holds none usable: %w", len(set.Keys), ErrNoKeys)
	}
	return keys, freshness(header, k.now()), nil
}

// usableKeys parses raw keys and keeps the public signature keys whose alg
// (when set) is allowed and whose type fits an allowed algorithm.
func (k *KeySet) usableKeys(raw []json.RawMessage) (keys []jose.JSONWebKey, dropped int) {
	keys = make([]jose.JSONWebKey, 0, len(raw))
	for _, r := range raw {
		var jk jose.JSONWebKey
		if err := jk.UnmarshalJSON(r); err != nil {
			dropped++
			continue
		}
		if config.CheckPublicSigningKey(&jk) != "" || weakRSA(jk.Key) ||
			(jk.Algorithm != "" && !slices.Contains(k.algs, jose.SignatureAlgorithm(jk.Algorithm))) ||
			!slices.ContainsFunc(k.algs, func(a jose.SignatureAlgorithm) bool { return fits(jk.Key, a) }) {
			dropped++
			continue
		}
		keys = append(keys, jk)
	}
	return keys, dropped
}

// MinRSABits is the smallest RSA modulus accepted for verification.
const MinRSABits = 2048

func weakRSA(key any) bool {
	pub, ok := key.(*rsa.PublicKey)
	return ok && pub.N.BitLen() < MinRSABits
}

// fits reports whether a public key's type can verify alg.
func fits(key any, alg jose.SignatureAlgorithm) bool {
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case jose.ES256, jose.ES384, jose.ES512:
		_, ok := key.(*ecdsa.PublicKey)
		return ok
	case jose.EdDSA:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}
