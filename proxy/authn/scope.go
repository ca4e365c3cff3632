package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/tokencache"
)

// ReasonNotAccepted is the reason when the credential may be valid but the
// policy does not accept its issuer, its key or the place it was presented
// in.
const ReasonNotAccepted = "credential_not_accepted"

// apiKeyCacheID prefixes the token-cache verifier id of API keys.
const apiKeyCacheID = "apikey\x00"

// Scope is what one policy accepts: its own issuers, its own keys, each only
// from the sources the policy names for it. Whatever else the config holds,
// a credential outside the scope is not accepted.
type Scope struct {
	bySource map[srcKey]scopeSource
	keys     map[string]bool // nil: every key of the config
}

// scopeSource is what a scope accepts from one source.
type scopeSource struct {
	verifiers []*issuerVerifier
	apiKeys   bool
}

// Scope builds the scope of one policy of the config the Authenticator was
// built from. Issuer names the Authenticator does not know are an error.
func (a *Authenticator) Scope(p *config.Policy) (*Scope, error) {
	s := &Scope{bySource: map[srcKey]scopeSource{}}
	for _, n := range p.Authentication.Issuers {
		iv, ok := a.byName[n]
		if !ok {
			return nil, fmt.Errorf("authn: policy %s: unknown issuer %q", p.Name, n)
		}
		for _, src := range iv.cfg.Sources {
			k := sourceKey(src)
			ss := s.bySource[k]
			if !slices.Contains(ss.verifiers, iv) {
				ss.verifiers = append(ss.verifiers, iv)
			}
			s.bySource[k] = ss
		}
	}
	if ak := p.Authentication.APIKeys; ak != nil {
		if len(ak.Keys) > 0 {
			s.keys = make(map[string]bool, len(ak.Keys))
			for _, k := range ak.Keys {
				s.keys[k] = true
			}
		}
		for _, src := range keySources(ak, a.keySources) {
			k := sourceKey(src)
			ss := s.bySource[k]
			ss.apiKeys = true
			s.bySource[k] = ss
		}
	}
	return s, nil
}

// everything is the scope of every issuer and key at every source.
func (a *Authenticator) everything() *Scope {
	s := &Scope{bySource: make(map[srcKey]scopeSource, len(a.x.sources))}
	for _, src := range a.x.sources {
		s.bySource[sourceKey(src.cfg)] = scopeSource{verifiers: src.issuers, apiKeys: src.apiKeys}
	}
	return s
}

// Attempt authenticates one request's credential for the policies that
// apply to it, verifying it at most once per verifier. It is not safe for
// concurrent use; it lives for one request.
type Attempt struct {
	a        *Authenticator
	cred     Credential
	throttle Throttle
	asked    bool // throttle asked; off is its answer
	off      bool

	parsed bool
	u      unverifiedJWT
	perr   *Error
	tried  []tried
	key    *tried

	// ckFor and ck memoise the cache key of the last verifier asked for, so
	// a fresh token's lookup and store hash it once.
	ckFor *issuerVerifier
	ck    [32]byte
}

type tried struct {
	iv  *issuerVerifier
	id  *identity.Identity
	err *Error
}

// Throttle says whether the request's client is throttled for failures.
// An Attempt asks it at most once, and only when the credential cannot be
// proved from what is already known, so a throttle kept in Redis costs no
// call for a cached credential.
type Throttle interface {
	Throttled() bool
}

// Fixed is a Throttle whose answer is known already (a local throttle is
// read before authenticating).
type Fixed bool

// Throttled implements Throttle.
func (f Fixed) Throttled() bool { return bool(f) }

// NewAttempt starts authenticating cred. When throttle says the client is
// throttled the attempt is offline: it never causes a key fetch and
// accepts only what verifies from what is already known: a cached
// identity, a token whose key id is loaded, an API key that verified
// before. So a credential that verifies still passes while guessing does
// not. A nil throttle never throttles.
func (a *Authenticator) NewAttempt(cred Credential, throttle Throttle) Attempt {
	return Attempt{a: a, cred: cred, throttle: throttle}
}

// offline asks the throttle, once.
func (at *Attempt) offline() bool {
	if at.throttle == nil {
		return false
	}
	if !at.asked {
		at.asked, at.off = true, at.throttle.Throttled()
	}
	return at.off
}

// Authenticate returns the identity the credential proves within s, or an
// *Error: credential_not_accepted when s does not accept the credential's
// source, issuer or key, the verification failure otherwise.
func (at *Attempt) Authenticate(ctx context.Context, s *Scope) (*identity.Identity, *Error) {
	c := at.cred
	if c.Value == "" {
		return nil, fail(ReasonMissingCredential, "no credential was presented")
	}
	if len(c.Value) > at.a.x.maxBytes {
		return nil, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	ss, ok := s.bySource[sourceKey(c.Source)]
	if !ok {
		return nil, fail(ReasonNotAccepted, "the credential was presented where this function does not accept one")
	}
	if ss.apiKeys && (len(ss.verifiers) == 0 || strings.Count(c.Value, ".") != 2) {
		id, err := at.apiKey()
		if err != nil {
			return nil, err
		}
		if s.keys != nil && !s.keys[id.KeyName] {
			return nil, fail(ReasonNotAccepted, "this function does not accept this API key")
		}
		return id, nil
	}
	return at.jwt(ctx, ss.verifiers)
}

// apiKey checks the key once per attempt. Offline, only a key found in the
// cache of keys that verified before is accepted.
func (at *Attempt) apiKey() (*identity.Identity, *Error) {
	if at.key != nil {
		return at.key.id, at.key.err
	}
	t := &tried{}
	at.key = t
	ck := tokencache.Key(at.a.keysID, at.cred.Value)
	if id, ok := at.a.cache.Get(ck); ok {
		t.id = id
		return id, nil
	}
	if at.offline() {
		t.err = fail(ReasonThrottled, "too many failed attempts from this client")
		return nil, t.err
	}
	t.id, t.err = at.a.apiKeys.authenticate(at.cred.Value, at.a.now())
	if t.err == nil {
		at.a.cache.Put(ck, at.a.keysID, t.id)
	}
	return t.id, t.err
}

// jwt verifies the token with the verifiers of the scope whose issuer URL
// is the token's iss, the first success winning.
func (at *Attempt) jwt(ctx context.Context, verifiers []*issuerVerifier) (*identity.Identity, *Error) {
	for _, iv := range verifiers {
		if t := at.lookup(iv); t != nil && t.err == nil {
			return t.id, nil
		}
		if id, ok := at.a.cache.Get(at.cacheKey(iv)); ok {
			at.tried = append(at.tried, tried{iv: iv, id: id})
			return id, nil
		}
	}
	if !at.parsed {
		at.parsed = true
		at.u, at.perr = parseJWT(at.cred.Value)
	}
	if at.perr != nil {
		return nil, at.perr
	}
	var first *Error
	for _, iv := range verifiers {
		if iv.cfg.IssuerURL != at.u.iss {
			continue
		}
		t := at.lookup(iv)
		if t == nil {
			at.tried = append(at.tried, at.verify(ctx, iv))
			t = &at.tried[len(at.tried)-1]
		}
		if t.err == nil {
			return t.id, nil
		}
		if first == nil {
			first = t.err
		}
	}
	if first == nil {
		return nil, fail(ReasonUnknownIssuer, "the token issuer is not trusted by this function")
	}
	return nil, first
}

func (at *Attempt) lookup(iv *issuerVerifier) *tried {
	for i := range at.tried {
		if at.tried[i].iv == iv {
			return &at.tried[i]
		}
	}
	return nil
}

func (at *Attempt) verify(ctx context.Context, iv *issuerVerifier) tried {
	if err := iv.checkHeader(at.u); err != nil {
		return tried{iv: iv, err: err}
	}
	// Offline, only a key id that is loaded now is tried: a kid-less token
	// or an unknown kid could make the key set fetch.
	if (at.u.kid == "" || !iv.keys.HasKey(at.u.kid)) && at.offline() {
		return tried{iv: iv, err: fail(ReasonThrottled, "too many failed attempts from this client")}
	}
	id, err := iv.verify(ctx, at.cred.Value, at.u, at.a.now())
	if err != nil {
		return tried{iv: iv, err: err}
	}
	at.a.cache.Put(at.cacheKey(iv), iv.id, id)
	return tried{iv: iv, id: id}
}

// cacheKey is the token's cache key under iv.
func (at *Attempt) cacheKey(iv *issuerVerifier) [32]byte {
	if at.ckFor != iv {
		at.ckFor, at.ck = iv, tokencache.Key(iv.id, at.cred.Value)
	}
	return at.ck
}

// fingerprints identify what an issuer's key set fetches (keys: including
// its inline keys) and what its verifier checks apart from the keys
// (settings); issuers equal in both differ only in name and sources.
func fingerprints(iss config.Issuer) (keys, settings string, err error) {
	ks := struct {
		IssuerURL, JWKSURL string
		JWKS               *config.JSONWebKeySet
		Discovery          *bool
		Algorithms         []string
		Fetch              config.JWKSFetch
		CABundle           string
	}{iss.IssuerURL, iss.JWKSURL, iss.JWKS, iss.Discovery, iss.Algorithms, iss.Fetch, iss.CABundle}
	if keys, err = digest(ks); err != nil {
		return "", "", err
	}
	iss.Name, iss.Sources, iss.JWKS = "", nil, nil
	if settings, err = digest(iss); err != nil {
		return "", "", err
	}
	return keys, settings, nil
}

func digest(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}
