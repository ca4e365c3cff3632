// Package assertion signs the identity assertion authgate-proxy sends the
// function: a short-lived ES256 JWT of the verified identity, signed with
// the namespace's key ring (internal/assertionkey) that the controller
// keeps in Secret authgate-assertion-key and the injector mounts into the
// sidecar. Signing goes through go-jose; nothing here builds JOSE by hand.
package assertion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/assertionkey"
)

// ErrNoKey means no key can sign now: the ring file is missing (the
// Secret is not there yet or not mounted), unreadable, or holds no key
// whose SignFrom has passed.
var ErrNoKey = errors.New("no identity assertion signing key")

// maxRingBytes bounds the ring file read.
const maxRingBytes = 1 << 20

// Keys holds the key ring read from a file, reloaded when it changes. The
// last good ring stays in force when the file becomes unreadable or
// invalid. It is safe for concurrent use.
type Keys struct {
	path   string
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex // serialises loads
	raw     []byte     // the file content last seen
	lastErr string     // logged once per distinct error
	cur     atomic.Pointer[ring]
}

// ring is a parsed key ring with a signer per key, built once per load.
type ring struct {
	keys    assertionkey.Ring
	signers map[string]jose.Signer
	jwks    []byte
}

// NewKeys returns keys read from path (nothing is read until Load).
func NewKeys(path string, now func() time.Time, logger *slog.Logger) *Keys {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Keys{path: path, now: now, logger: logger}
}

// Path is the ring file.
func (k *Keys) Path() string { return k.path }

// Load reads the ring file and, when it changed and is valid, makes it the
// ring in force. A missing file is not an error of the file (the Secret is
// optional) but leaves no ring when none was loaded before.
func (k *Keys) Load() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, err := readLimited(k.path)
	if err == nil && k.cur.Load() != nil && bytes.Equal(b, k.raw) {
		return nil
	}
	var r *ring
	if err == nil {
		r, err = build(b)
	}
	if err != nil {
		if msg := err.Error(); msg != k.lastErr {
			k.lastErr = msg
			// A missing ring is normal where no policy enables the
			// assertion (the Secret is optional): info, not a warning.
			level := slog.LevelWarn
			if errors.Is(err, ErrNoKey) {
				level = slog.LevelInfo
			}
			k.logger.Log(context.Background(), level, "identity assertion keys not loaded; the last good keys stay in force",
				slog.String("path", k.path), slog.String("error", msg), slog.Bool("have_keys", k.cur.Load() != nil))
		}
		return err
	}
	k.raw, k.lastErr = b, ""
	k.cur.Store(r)
	k.logger.Info("identity assertion keys loaded", slog.String("path", k.path), slog.Int("keys", len(r.keys.Keys)))
	return nil
}

// Run reloads the ring every interval until ctx is done.
func (k *Keys) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = k.Load()
		}
	}
}

// JWKS is the public key set of the ring in force (JSON), or ErrNoKey.
func (k *Keys) JWKS() ([]byte, error) {
	r := k.cur.Load()
	if r == nil {
		return nil, ErrNoKey
	}
	return r.jwks, nil
}

// SignerAge is how long ago the key that signs now was created.
func (k *Keys) SignerAge() (time.Duration, bool) {
	r := k.cur.Load()
	if r == nil {
		return 0, false
	}
	now := k.now()
	key, ok := r.keys.Signer(now)
	if !ok {
		return 0, false
	}
	return now.Sub(key.Created), true
}

// sign signs payload with the key that signs at now.
func (k *Keys) sign(payload []byte, now time.Time) (string, error) {
	r := k.cur.Load()
	if r == nil {
		return "", ErrNoKey
	}
	key, ok := r.keys.Signer(now)
	if !ok {
		return "", ErrNoKey
	}
	obj, err := r.signers[key.KID()].Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign identity assertion: %w", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("serialize identity assertion: %w", err)
	}
	return s, nil
}

func build(b []byte) (*ring, error) {
	keys, err := assertionkey.Parse(b)
	if err != nil {
		return nil, err
	}
	r := &ring{keys: keys, signers: make(map[string]jose.Signer, len(keys.Keys))}
	for i := range keys.Keys {
		key := &keys.Keys[i]
		// A JSONWebKey as the key puts its kid in the protected header.
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: assertionkey.Algorithm, Key: key.JWK},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", key.KID(), err)
		}
		r.signers[key.KID()] = s
	}
	pub := keys.PublicJWKS()
	if r.jwks, err = json.Marshal(pub); err != nil {
		return nil, fmt.Errorf("encode public keys: %w", err)
	}
	return r, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist (Secret %s not mounted yet?)", ErrNoKey, path, assertionkey.SecretName)
		}
		return nil, fmt.Errorf("open key ring: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRingBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read key ring: %w", err)
	}
	if len(b) > maxRingBytes {
		return nil, fmt.Errorf("key ring %s is larger than %d bytes", path, maxRingBytes)
	}
	return b, nil
}
