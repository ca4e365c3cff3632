// Package devissuer is a small, real OIDC issuer for tests, the demo and
// `authgate dev-issuer`: it serves a discovery document and a JWKS, and mints
// RS256 or ES256 tokens signed with go-jose. It mints whatever it is asked
// for, so it must never face anything but loopback.
package devissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/proxy/config"
)

// Supported signing algorithms.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// DefaultTTL is the lifetime of a minted token when the claims set no exp.
const DefaultTTL = time.Hour

// Options configure an Issuer.
type Options struct {
	// Now is the clock used for iat and exp; nil means time.Now.
	Now func() time.Time
}

// signingKey is one private key and its key id.
type signingKey struct {
	kid    string
	signer crypto.Signer
}

// Issuer is a local OIDC issuer. It is safe for concurrent use.
type Issuer struct {
	now          func() time.Time
	jwksRequests atomic.Int64

	mu   sync.RWMutex
	url  string
	keys map[string]signingKey // by algorithm
}

// New generates an RSA-2048 (RS256) and a P-256 (ES256) key with distinct
// key ids.
func New(opts Options) (*Issuer, error) {
	i := &Issuer{now: opts.Now, keys: make(map[string]signingKey, 2)}
	if i.now == nil {
		i.now = time.Now
	}
	for _, alg := range []string{RS256, ES256} {
		k, err := generate(alg)
		if err != nil {
			return nil, err
		}
		i.keys[alg] = k
	}
	return i, nil
}

func generate(alg string) (signingKey, error) {
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case RS256:
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return signingKey{}, fmt.Errorf("unsupported algorithm %q (want RS256 or ES256)", alg)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return signingKey{}, fmt.Errorf("generate key id: %w", err)
	}
	return signingKey{kid: "dev-" + alg + "-" + hex.EncodeToString(b[:]), signer: s}, nil
}

// SetURL sets the issuer URL used as the iss claim and in the discovery
// document, e.g. an httptest server's URL.
func (i *Issuer) SetURL(u string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.url = u
}

// URL returns the issuer URL.
func (i *Issuer) URL() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.url
}

// RotateKey replaces the key for alg with a new one under a new key id; the
// old key is no longer served or used.
func (i *Issuer) RotateKey(alg string) (string, error) {
	k, err := generate(alg)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys[alg] = k
	return k.kid, nil
}

// KeyID returns the current key id for alg, or "" for an unknown alg.
func (i *Issuer) KeyID(alg string) string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.keys[alg].kid
}

// SigningKey returns the current private key for alg (nil for an unknown
// alg), for tests that forge tokens.
func (i *Issuer) SigningKey(alg string) crypto.Signer {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.keys[alg].signer
}

// JWKSRequests reports how many times /jwks was served.
func (i *Issuer) JWKSRequests() int64 { return i.jwksRequests.Load() }

// PublicJWKS returns the current public keys, for inline configuration.
func (i *Issuer) PublicJWKS() config.JSONWebKeySet {
	i.mu.RLock()
	defer i.mu.RUnlock()
	set := config.JSONWebKeySet{Keys: make([]config.RawJSON, 0, len(i.keys))}
	for _, alg := range []string{RS256, ES256} {
		k, ok := i.keys[alg]
		if !ok {
			continue
		}
		jwk := jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: alg, Use: "sig"}
		raw, err := jwk.MarshalJSON()
		if err != nil {
			// Marshalling a freshly generated RSA or EC public key cannot fail.
			panic(fmt.Sprintf("devissuer: marshal public key: %v", err))
		}
		set.Keys = append(set.Keys, raw)
	}
	return set
}

// MintOption changes how one token is signed.
type MintOption func(*mintOptions)

type mintOptions struct {
	alg     string
	kid     *string // nil: the key's own id
	noKID   bool
	headers map[jose.HeaderKey]any
}

// WithAlg signs with "RS256" (default) or "ES256".
func WithAlg(alg string) MintOption { return func(o *mintOptions) { o.alg = alg } }

// WithKID puts kid in the header instead of the signing key's id.
func WithKID(kid string) MintOption {
	return func(o *mintOptions) { o.kid = &kid; o.noKID = false }
}

// WithoutKID leaves the kid header out.
func WithoutKID() MintOption { return func(o *mintOptions) { o.noKID = true; o.kid = nil } }

// WithHeader adds a protected header (typ, jku, crit, ...); it overrides
// any header set by the other options.
func WithHeader(k string, v any) MintOption {
	return func(o *mintOptions) {
		if o.headers == nil {
			o.headers = map[jose.HeaderKey]any{}
		}
		o.headers[jose.HeaderKey(k)] = v
	}
}

// Mint signs claims. Defaults: iss is URL(), iat now, exp now+1h, RS256 with
// the key's kid. Explicit claims override the defaults; a claim set to nil
// is removed (e.g. to test a missing exp).
func (i *Issuer) Mint(claims map[string]any, opts ...MintOption) (string, error) {
	o := mintOptions{alg: RS256}
	for _, opt := range opts {
		opt(&o)
	}
	i.mu.RLock()
	key, ok := i.keys[o.alg]
	iss := i.url
	i.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("unsupported algorithm %q (want RS256 or ES256)", o.alg)
	}
	now := i.now()
	all := map[string]any{"iss": iss, "iat": now.Unix(), "exp": now.Add(DefaultTTL).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(all, k)
			continue
		}
		all[k] = v
	}
	payload, err := json.Marshal(all)
	if err != nil {
		return "", fmt.Errorf("marshal claims: %w", err)
	}

	headers := map[jose.HeaderKey]any{}
	switch {
	case o.noKID:
	case o.kid != nil:
		headers["kid"] = *o.kid
	default:
		headers["kid"] = key.kid
	}
	for k, v := range o.headers {
		headers[k] = v
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(o.alg), Key: key.signer},
		&jose.SignerOptions{ExtraHeaders: headers},
	)
	if err != nil {
		return "", fmt.Errorf("new signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return obj.CompactSerialize()
}
