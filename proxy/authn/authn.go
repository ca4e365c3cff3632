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
	"slices"
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
	// KeySet returns the key set for an issuer whose key settings have this
	// fingerprint, so key sets outlive a configuration (gateway.State); nil
	// builds a new one per issuer setting.
	KeySet func(fingerprint string, iss config.Issuer) (*jwks.KeySet, error)
	// KeyEpoch returns a value that changes whenever a key was removed from
	// the inline keys of the verifier with this id since the last call, so
	// cached identities outlive a configuration (and added keys) but never
	// a key that was taken away; nil: verifier ids carry no epoch.
	KeyEpoch func(verifierID string, inline *config.JSONWebKeySet) string
	// Cache is the verified-token cache to use (gateway.State keeps one
	// across configurations); nil builds one from the config's tokenCache.
	Cache *tokencache.Cache
}

// Authenticator turns requests into verified identities. It is built once
// per configuration and is safe for concurrent use.
type Authenticator struct {
	now       func() time.Time
	x         extractor
	verifiers []*issuerVerifier          // one per distinct verification setting
	byName    map[string]*issuerVerifier // issuer name → its (shared) verifier
	apiKeys   *apiKeyIndex
	keysID    string   // the API keys' verifier id in the token cache
	keyFPs    []string // fingerprints of the key sets in use
	// keySources are the config's apiKeys.sources, where a policy that names
	// none reads its keys.
	keySources []config.CredentialSource
	cache      *tokencache.Cache
	all        *Scope // every issuer and key: Authenticate without a policy
}

// New builds the extractor, one key set and go-oidc verifier per distinct
// issuer setting, the API key index and the token cache. Issuers that differ
// only in name share one verifier (and so one key set and cache entry);
// issuers that differ only in what they verify share one key set. Every
// source the config's issuers and policies name is read, so the caller
// passes only the issuers and policies that apply (gateway.Build scopes the
// config to the workload). cfg must be defaulted and validated. New does no
// network I/O.
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
	a := &Authenticator{now: opts.Now, byName: map[string]*issuerVerifier{}, keySources: cfg.APIKeys.Sources}
	a.x.maxBytes = cfg.Limits.MaxTokenBytes
	if a.x.maxBytes <= 0 {
		a.x.maxBytes = config.DefaultMaxTokenBytes
	}
	a.x.byKey = map[srcKey]*source{}
	if err := a.addIssuers(cfg.Issuers, opts); err != nil {
		return nil, err
	}
	idx, err := newAPIKeyIndex(cfg.APIKeys.Keys)
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	a.apiKeys = idx
	if a.keysID, err = digest(cfg.APIKeys.Keys); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	a.keysID = apiKeyCacheID + a.keysID
	if err := a.addKeySources(cfg); err != nil {
		return nil, err
	}
	a.cache = opts.Cache
	if a.cache == nil {
		a.cache = tokencache.New(cfg.TokenCache.MaxEntries, cfg.TokenCache.TTL.Duration, opts.Now, opts.Metrics)
	}
	a.all = a.everything()
	return a, nil
}

// addIssuers builds the verifiers, sharing verifiers and key sets between
// issuers whose settings are the same.
func (a *Authenticator) addIssuers(issuers []config.Issuer, opts Options) error {
	keySets := map[string]*jwks.KeySet{}
	verifiers := map[string]*issuerVerifier{}
	newKeySet := opts.KeySet
	if newKeySet == nil {
		newKeySet = func(_ string, iss config.Issuer) (*jwks.KeySet, error) {
			return jwks.New(jwks.Options{Issuer: iss, HTTPClient: opts.HTTPClient, Now: opts.Now, Metrics: opts.Metrics, Logger: opts.Logger})
		}
	}
	for _, iss := range issuers {
		kfp, settings, err := fingerprints(iss)
		if err != nil {
			return fmt.Errorf("authn: issuer %q: %w", iss.Name, err)
		}
		vfp := settings + "\x00" + kfp
		iv, ok := verifiers[vfp]
		if !ok {
			keys, ok := keySets[kfp]
			if !ok {
				if keys, err = newKeySet(kfp, iss); err != nil {
					return fmt.Errorf("authn: issuer %q: %w", iss.Name, err)
				}
				keySets[kfp] = keys
				a.keyFPs = append(a.keyFPs, kfp)
			}
			iv = newIssuerVerifier(iss, keys, opts.Now)
			iv.id = settings + "\x00" + iss.Name
			if opts.KeyEpoch != nil {
				iv.id += "\x00" + opts.KeyEpoch(iv.id, iss.JWKS)
			}
			verifiers[vfp] = iv
			a.verifiers = append(a.verifiers, iv)
		}
		a.byName[iss.Name] = iv
		for _, s := range iss.Sources {
			src, err := a.x.add(s)
			if err != nil {
				return fmt.Errorf("authn: issuer %q: %w", iss.Name, err)
			}
			if !slices.Contains(src.issuers, iv) {
				src.issuers = append(src.issuers, iv)
			}
		}
	}
	return nil
}

// addKeySources registers where API keys are read: each policy's own
// sources, or the config's apiKeys.sources for a policy that names none.
func (a *Authenticator) addKeySources(cfg *config.ProxyConfig) error {
	add := func(srcs []config.CredentialSource) error {
		for _, s := range srcs {
			src, err := a.x.add(s)
			if err != nil {
				return fmt.Errorf("authn: api keys: %w", err)
			}
			src.apiKeys = true
		}
		return nil
	}
	if len(cfg.APIKeys.Keys) > 0 && len(cfg.Policies) == 0 {
		return add(cfg.APIKeys.Sources)
	}
	for i := range cfg.Policies {
		if ak := cfg.Policies[i].Authentication.APIKeys; ak != nil {
			if err := add(keySources(ak, cfg.APIKeys.Sources)); err != nil {
				return err
			}
		}
	}
	return nil
}

// keySources are the sources a policy reads API keys from.
func keySources(ak *config.APIKeyAccess, global []config.CredentialSource) []config.CredentialSource {
	if len(ak.Sources) > 0 {
		return ak.Sources
	}
	return global
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

// Run refreshes every key set in the background until ctx is done.
func (a *Authenticator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ks := range a.keySets() {
		wg.Go(func() { ks.Run(ctx) })
	}
	wg.Wait()
}

// keySets lists each distinct key set once.
func (a *Authenticator) keySets() []*jwks.KeySet {
	var out []*jwks.KeySet
	for _, iv := range a.verifiers {
		if !slices.Contains(out, iv.keys) {
			out = append(out, iv.keys)
		}
	}
	return out
}

// VerifierIDs lists the identities under which this Authenticator caches
// verified credentials: one per verifier and one for its API keys. A
// verifier whose settings changed has a new id, so a cache shared across
// configurations can drop exactly what no verifier produces any more.
func (a *Authenticator) VerifierIDs() []string {
	out := make([]string, 0, len(a.verifiers)+1)
	for _, iv := range a.verifiers {
		out = append(out, iv.id)
	}
	return append(out, a.keysID)
}

// KeySetFingerprints are the key-setting fingerprints of the key sets in
// use, as passed to Options.KeySet.
func (a *Authenticator) KeySetFingerprints() []string { return slices.Clone(a.keyFPs) }

// IssuerStatus reports every issuer's key set by issuer name.
func (a *Authenticator) IssuerStatus() map[string]jwks.Status {
	out := make(map[string]jwks.Status, len(a.byName))
	for name, iv := range a.byName {
		out[name] = iv.keys.Status()
	}
	return out
}

// Extract returns the request's only credential, or an *Error:
// missing_credential when there is none, ambiguous_credential (400) when a
// source repeats, two sources carry one, or a standard credential location
// the config does not read carries one too; malformed_credential and
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

// Authenticate verifies c against every configured issuer and key and
// returns the caller's identity, or an *Error. The identity is shared and
// must not be modified. Policies authenticate through an Attempt and their
// own Scope instead.
func (a *Authenticator) Authenticate(ctx context.Context, c Credential) (*identity.Identity, error) {
	at := a.NewAttempt(c, nil)
	id, err := at.Authenticate(ctx, a.all)
	if err != nil {
		return nil, err
	}
	return id, nil
}
