// Package assertionkey is the signing key ring of identity assertions,
// shared by the controller (which generates, rotates and publishes it) and
// authgate-proxy (which signs with it). It holds no Kubernetes types so the
// proxy can link it.
//
// A ring is a list of ES256 keys, each with the instant it was published
// (Created) and the instant from which it signs (SignFrom). The signing key
// at an instant is the newest key whose SignFrom has passed, so every holder
// of the same ring switches keys at the same moment without being told. A
// new key is published Lead before it signs, so verifiers that cache the
// key set can learn it first; a key that stopped signing stays published
// for Retain, which must be at least the longest assertion lifetime.
package assertionkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Names of what the controller keeps in each namespace that uses identity
// assertions, and where the injector mounts the key Secret in the sidecar.
const (
	// SecretName holds the ring (private keys) under SecretKey.
	SecretName = "authgate-assertion-key" //nolint:gosec // a Secret's name, not a credential
	// SecretKey is the Secret's data key holding the ring as JSON.
	SecretKey = "ring.json"
	// JWKSConfigMapName holds the public keys under JWKSKey.
	JWKSConfigMapName = "authgate-assertion-jwks"
	// JWKSKey is the ConfigMap's data key holding the public JWKS.
	JWKSKey = "jwks.json"
	// MountDir is where the injector mounts the Secret in the sidecar.
	MountDir = "/etc/authgate-assertion"
	// DefaultPath is the ring file inside MountDir.
	DefaultPath = MountDir + "/" + SecretKey
	// Algorithm signs every assertion.
	Algorithm = jose.ES256
)

// Timing of the ring. MaxTTL is the longest assertion lifetime the API
// accepts (spec.identityAssertion.ttl); Retain covers it plus the time a
// kubelet takes to project a changed Secret into a sidecar that is still
// signing with the old key.
const (
	MaxTTL = 5 * time.Minute
	// DefaultLead is how long a new key is published before it signs.
	DefaultLead = 10 * time.Minute
	// DefaultRetain is how long a key stays published after it stopped
	// signing: MaxTTL plus the kubelet's projection delay (up to about
	// two minutes) and margin.
	DefaultRetain = MaxTTL + 5*time.Minute
	// DefaultRotation is the default period between two keys.
	DefaultRotation = 24 * time.Hour
	// MinRotation is the shortest period accepted: a key must sign for
	// longer than it takes to publish and retire one.
	MinRotation = time.Hour
)

// Key is one signing key of a ring.
type Key struct {
	// JWK is the private key (kid, alg ES256, use sig).
	JWK jose.JSONWebKey `json:"jwk"`
	// Created is when the key was generated and published.
	Created time.Time `json:"created"`
	// SignFrom is when the key starts signing.
	SignFrom time.Time `json:"signFrom"`
}

// KID is the key's id.
func (k *Key) KID() string { return k.JWK.KeyID }

// Ring is a namespace's keys, oldest first.
type Ring struct {
	Keys []Key `json:"keys"`
}

// Policy times a ring's rotation.
type Policy struct {
	// Rotation is how long a key signs before its successor takes over.
	Rotation time.Duration
	// Lead is how long a key is published before it signs.
	Lead time.Duration
	// Retain is how long a key stays published after it stopped signing.
	Retain time.Duration
}

// DefaultPolicy is the policy with the given rotation period and the
// default lead and retention.
func DefaultPolicy(rotation time.Duration) Policy {
	return Policy{Rotation: rotation, Lead: DefaultLead, Retain: DefaultRetain}
}

// Validate checks the policy: retention covers MaxTTL, and a key signs for
// longer than one lead.
func (p Policy) Validate() error {
	var errs []error
	if p.Rotation < MinRotation {
		errs = append(errs, fmt.Errorf("rotation period %s is shorter than %s", p.Rotation, MinRotation))
	}
	if p.Lead <= 0 || p.Lead >= p.Rotation {
		errs = append(errs, fmt.Errorf("publish lead %s must be positive and shorter than the rotation period %s", p.Lead, p.Rotation))
	}
	if p.Retain < MaxTTL {
		errs = append(errs, fmt.Errorf("retention %s is shorter than the longest assertion lifetime %s", p.Retain, MaxTTL))
	}
	return errors.Join(errs...)
}

// Signer returns the key that signs at now: the newest whose SignFrom has
// passed. ok is false when none has.
func (r *Ring) Signer(now time.Time) (k *Key, ok bool) {
	for i := len(r.Keys) - 1; i >= 0; i-- {
		if !r.Keys[i].SignFrom.After(now) {
			return &r.Keys[i], true
		}
	}
	return nil, false
}

// PublicJWKS is every key's public half, the set verifiers trust.
func (r *Ring) PublicJWKS() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(r.Keys))}
	for i := range r.Keys {
		set.Keys = append(set.Keys, r.Keys[i].JWK.Public())
	}
	return set
}

// Rotate returns the ring as it must be at now under p, whether it differs
// from r, and when it must be looked at again. An empty ring gets a key
// that signs at once (no verifier can hold an older set). When the signing
// key has signed for p.Rotation and no successor is pending, a successor
// is generated that signs p.Lead later. A key older than the signing key
// is dropped once p.Retain has passed since the signing key took over.
func Rotate(r Ring, now time.Time, p Policy) (out Ring, changed bool, next time.Time, err error) {
	out = Ring{Keys: slices.Clone(r.Keys)}
	slices.SortStableFunc(out.Keys, func(a, b Key) int { return a.SignFrom.Compare(b.SignFrom) })
	cur, ok := out.Signer(now)
	if !ok && len(out.Keys) == 0 {
		k, err := NewKey(now, now)
		if err != nil {
			return r, false, time.Time{}, err
		}
		out.Keys = append(out.Keys, k)
		changed = true
		cur = &out.Keys[0]
	}
	if cur == nil {
		// Only pending keys (a ring written ahead of this clock): wait.
		return out, changed, out.Keys[0].SignFrom, nil
	}
	// Retire keys older than the signer once Retain has passed.
	curFrom := cur.SignFrom
	kept := out.Keys[:0]
	for _, k := range out.Keys {
		if k.SignFrom.Before(curFrom) && !now.Before(curFrom.Add(p.Retain)) {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	out.Keys = kept
	cur, _ = out.Signer(now)
	newest := out.Keys[len(out.Keys)-1]
	pending := newest.SignFrom.After(now)
	rotateAt := cur.SignFrom.Add(p.Rotation - p.Lead)
	if !pending && !now.Before(rotateAt) {
		k, err := NewKey(now, now.Add(p.Lead))
		if err != nil {
			return r, false, time.Time{}, err
		}
		out.Keys = append(out.Keys, k)
		changed = true
		newest, pending = k, true
	}
	next = rotateAt
	if pending {
		next = newest.SignFrom
	}
	for _, k := range out.Keys {
		if k.SignFrom.Before(curFrom) {
			next = earliest(next, curFrom.Add(p.Retain))
		}
	}
	if !next.After(now) {
		next = now.Add(time.Second)
	}
	return out, changed, next, nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// NewKey generates an ES256 key published at created that signs from
// signFrom. Its kid is random (16 bytes, base64url-free hex).
func NewKey(created, signFrom time.Time) (Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate ES256 key: %w", err)
	}
	kid := make([]byte, 16)
	if _, err := rand.Read(kid); err != nil {
		return Key{}, fmt.Errorf("generate key id: %w", err)
	}
	return Key{
		JWK:      jose.JSONWebKey{Key: priv, KeyID: fmt.Sprintf("%x", kid), Algorithm: string(Algorithm), Use: "sig"},
		Created:  created.UTC().Truncate(time.Second),
		SignFrom: signFrom.UTC().Truncate(time.Second),
	}, nil
}

// Marshal encodes the ring (private keys included).
func (r *Ring) Marshal() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode key ring: %w", err)
	}
	return b, nil
}

// Parse decodes a ring and checks every key: a private ES256 P-256 key with
// a kid, unique within the ring. Keys are returned in SignFrom order.
func Parse(b []byte) (Ring, error) {
	var r Ring
	if err := json.Unmarshal(b, &r); err != nil {
		return Ring{}, fmt.Errorf("decode key ring: %w", err)
	}
	if len(r.Keys) == 0 {
		return Ring{}, errors.New("key ring holds no key")
	}
	seen := map[string]bool{}
	for i := range r.Keys {
		k := &r.Keys[i]
		priv, ok := k.JWK.Key.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return Ring{}, fmt.Errorf("key %d: not a private P-256 key", i)
		}
		if k.JWK.Algorithm != string(Algorithm) || k.KID() == "" {
			return Ring{}, fmt.Errorf("key %d: want alg %s and a kid", i, Algorithm)
		}
		if seen[k.KID()] {
			return Ring{}, fmt.Errorf("key %d: duplicate kid %s", i, k.KID())
		}
		seen[k.KID()] = true
	}
	slices.SortStableFunc(r.Keys, func(a, b Key) int { return a.SignFrom.Compare(b.SignFrom) })
	return r, nil
}
