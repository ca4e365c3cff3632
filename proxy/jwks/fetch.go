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
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/netguard"
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
// (fail closed rather than fall back to the system roots). With policy, the
// client is always a dedicated one (newTransport) and base is refused: a
// caller's transport may dial in ways the policy cannot see.
func newClient(base *http.Client, timeout time.Duration, roots *x509.CertPool, policy *netguard.Policy) (*http.Client, error) {
	if policy != nil && base != nil {
		return nil, errors.New("a fetch policy applies only to the key set's own client, not to Options.HTTPClient")
	}
	var c http.Client
	if base != nil && (roots == nil || base.Transport != nil) {
		c = *base
	} else {
		c = http.Client{Timeout: timeout, Transport: newTransport(timeout, policy)}
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

// newTransport is the one place a key fetcher's transport is built, guarded
// or not. With policy, every connection is checked by the dialer's
// ControlContext on the address it connects to, after DNS resolution: each
// address a name resolves to, each redirect hop, each new connection (and
// clones for CA bundles keep the dialer). HTTP(S)_PROXY is then ignored:
// through a proxy, the dialer would see only the proxy's address and the
// proxy would reach the target unchecked.
func newTransport(timeout time.Duration, policy *netguard.Policy) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if policy != nil {
		dialer.ControlContext = policy.Control
		proxy = nil
	}
	return &http.Transport{
		Proxy:                  proxy,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           4,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
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
		// A refused address is reported as itself, without the dial
		// error around it, so a policy's status says plainly why.
		var denied *netguard.DeniedError
		if errors.As(err, &denied) {
			return nil, nil, fmt.Errorf("%s: %w", what, denied)
		}
		err = unwrapURLError(err)
		// net/http quotes the bytes it could not parse (`malformed HTTP
		// response "SSH-2.0-..."`, a malformed header line): that is the
		// peer's content, a service banner, and must not reach a status.
		if strings.Contains(err.Error(), "malformed") {
			return nil, nil, fmt.Errorf("%s: malformed HTTP response (not quoted)", what)
		}
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: unexpected status %d (%s)", what, resp.StatusCode, contentType(resp.Header))
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

// contentType describes a response's Content-Type for an error message.
// Errors land in AuthPolicy status and the proxy's admin endpoint, so they
// carry the status code and this, never a byte of the body.
func contentType(h http.Header) string {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "no content type"
	}
	// Only the media type: parameters are free text.
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "an invalid content type"
	}
	return fmt.Sprintf("content type %q", clip(mt))
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
	body, header, err := k.get(ctx, "discovery", u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: parse document: %w", bodyError(err, header))
	}
	if doc.Issuer != k.issuerURL {
		// The document's issuer is remote content: it is not quoted.
		hint := ""
		if strings.TrimSuffix(doc.Issuer, "/") == strings.TrimSuffix(k.issuerURL, "/") {
			hint = " (they differ in a trailing slash)"
		}
		return "", fmt.Errorf("discovery: document issuer does not equal issuerURL %q%s", k.issuerURL, hint)
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

// errNotJSON is a response body that does not decode as the expected JSON.
var errNotJSON = errors.New("not the expected JSON document")

// bodyError replaces a JSON decoding error, whose text may quote the body
// (json.SyntaxError names the offending character, UnmarshalTypeError the
// value's type and field), by one that gives only the offset and the
// content type.
func bodyError(err error, h http.Header) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("%w: invalid JSON at byte %d (%s)", errNotJSON, syn.Offset, contentType(h))
	}
	return fmt.Errorf("%w (%s)", errNotJSON, contentType(h))
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
		return nil, lifetime{}, fmt.Errorf("jwks: parse key set: %w", bodyError(err, header))
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
