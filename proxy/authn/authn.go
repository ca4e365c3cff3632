// Package authn authenticates callers of authgate-proxy: it extracts the one
// credential of a request (bearer token, header, cookie or query parameter),
// verifies JWTs against the configured issuers through go-oidc and hardened
// key sets, checks API keys by hash, and caches verified identities.
package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/jwks"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/tokencache"
)

// Options are an Authenticator's dependencies.
type Options struct {
	// HTTPClient fetches keys and discovery documents; nil lets each key set
	// build a dedicated client (never http.DefaultClient).
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives key set and token cache metrics; nil registers them
	// on a private registry.
	Metrics *metrics.Metrics
	// Logger receives key set events; nil discards them.
	Logger *slog.Logger
}

// Authenticator turns requests into verified identities. It is built once
// per configuration and is safe for concurrent use.
type Authenticator struct {
	now     func() time.Time
	x       extractor
	issuers []*issuerVerifier
	apiKeys *apiKeyIndex
	cache   *tokencache.Cache
}

// New builds the extractor, one key set and go-oidc verifier per issuer,
// the API key index and the token cache. cfg must be defaulted and
// validated. New does no network I/O.
func New(cfg *config.ProxyConfig, opts Options) (*Authenticator, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(prometheus.NewRegistry())
	}
	a := &Authenticator{now: opts.Now}
	a.x.maxBytes = cfg.Limits.MaxTokenBytes
	if a.x.maxBytes <= 0 {
		a.x.maxBytes = config.DefaultMaxTokenBytes
	}
	a.x.byKey = map[srcKey]*source{}
	for _, iss := range cfg.Issuers {
		keys, err := jwks.New(jwks.Options{Issuer: iss, HTTPClient: opts.HTTPClient, Now: opts.Now, Metrics: opts.Metrics, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("authn: issuer %q: %w", iss.Name, err)
		}
		iv := newIssuerVerifier(iss, keys, opts.Now)
		a.issuers = append(a.issuers, iv)
		for _, s := range iss.Sources {
			src, err := a.x.add(s)
			if err != nil {
				return nil, fmt.Errorf("authn: issuer %q: %w", iss.Name, err)
			}
			src.issuers = append(src.issuers, iv)
		}
	}
	idx, err := newAPIKeyIndex(cfg.APIKeys.Keys)
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	a.apiKeys = idx
	if len(cfg.APIKeys.Keys) > 0 {
		for _, s := range cfg.APIKeys.Sources {
			src, err := a.x.add(s)
			if err != nil {
				return nil, fmt.Errorf("authn: api keys: %w", err)
			}
			src.apiKeys = true
		}
	}
	a.cache = tokencache.New(cfg.TokenCache.MaxEntries, cfg.TokenCache.TTL.Duration, opts.Now, opts.Metrics)
	return a, nil
}

// add returns the source for s, creating it on first use. Two users of the
// same header must agree on its prefix.
func (x *extractor) add(s config.CredentialSource) (*source, error) {
	key := sourceKey(s)
	if src, ok := x.byKey[key]; ok {
		if !strings.EqualFold(src.cfg.Prefix, s.Prefix) {
			return nil, fmt.Errorf("source %s %q is configured with two different prefixes", s.Type, s.Name)
		}
		return src, nil
	}
	if s.Type == config.SourceHeader {
		s.Name = http.CanonicalHeaderKey(s.Name)
	}
	src := &source{cfg: s}
	x.byKey[key] = src
	x.sources = append(x.sources, src)
	return src, nil
}

// Run refreshes every issuer's key set in the background until ctx is done.
func (a *Authenticator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, iv := range a.issuers {
		wg.Go(func() { iv.keys.Run(ctx) })
	}
	wg.Wait()
}

// IssuerStatus reports every issuer's key set by issuer name.
func (a *Authenticator) IssuerStatus() map[string]jwks.Status {
	out := make(map[string]jwks.Status, len(a.issuers))
	for _, iv := range a.issuers {
		out[iv.name] = iv.keys.Status()
	}
	return out
}

// Extract returns the request's only credential, or an *Error:
// missing_credential when there is none, ambiguous_credential (400) when a
// source repeats or two sources carry one, malformed_credential and
// oversized_credential otherwise.
func (a *Authenticator) Extract(r *http.Request) (Credential, error) {
	c, err := a.x.extract(r)
	if err != nil {
		return Credential{}, err
	}
	return c, nil
}

// Strip removes c from r before it is forwarded: its header, its cookie
// (other cookies stay) or its query parameter (from URL.RawQuery and
// RequestURI).
func (a *Authenticator) Strip(r *http.Request, c Credential) { strip(r, c) }

// Authenticate verifies c and returns the caller's identity, or an *Error.
// The identity is shared and must not be modified.
func (a *Authenticator) Authenticate(ctx context.Context, c Credential) (*identity.Identity, error) {
	src := a.x.byKey[sourceKey(c.Source)]
	if src == nil || c.Value == "" {
		return nil, fail(ReasonMissingCredential, "no credential was presented")
	}
	if len(c.Value) > a.x.maxBytes {
		return nil, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	var (
		id  *identity.Identity
		err *Error
	)
	if src.apiKeys && (len(src.issuers) == 0 || strings.Count(c.Value, ".") != 2) {
		id, err = a.apiKeys.authenticate(c.Value, a.now())
	} else {
		id, err = a.authenticateJWT(ctx, src, c.Value)
	}
	if err != nil {
		return nil, err
	}
	return id, nil
}

// authenticateJWT picks the issuer by the unverified iss among those
// serving the source, consults the cache, then verifies.
func (a *Authenticator) authenticateJWT(ctx context.Context, src *source, tok string) (*identity.Identity, *Error) {
	if len(src.issuers) == 1 {
		// The same token string was fully verified by this issuer before.
		if id, ok := a.cache.Get(tokencache.Key(src.issuers[0].name, tok)); ok {
			return id, nil
		}
	}
	u, err := parseJWT(tok)
	if err != nil {
		return nil, err
	}
	var first *Error
	for _, iv := range src.issuers {
		if iv.cfg.IssuerURL != u.iss {
			continue
		}
		id, err := a.verifyWith(ctx, iv, tok, u, len(src.issuers) > 1)
		if err == nil {
			return id, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return nil, fail(ReasonUnknownIssuer, "the token issuer is not trusted")
	}
	return nil, first
}

func (a *Authenticator) verifyWith(ctx context.Context, iv *issuerVerifier, tok string, u unverifiedJWT, lookup bool) (*identity.Identity, *Error) {
	if err := iv.checkHeader(u); err != nil {
		return nil, err
	}
	key := tokencache.Key(iv.name, tok)
	if lookup {
		if id, ok := a.cache.Get(key); ok {
			return id, nil
		}
	}
	id, err := iv.verify(ctx, tok, a.now())
	if err != nil {
		return nil, err
	}
	a.cache.Put(key, id)
	return id, nil
}
