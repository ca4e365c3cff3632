package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// validate checks the keys and returns the index of each key by name.
func (a *APIKeys) validate(errs *ErrorList, p Path) map[string]int {
	names := map[string]int{}
	hashes := map[string]bool{}
	validateSources(errs, p.child("sources"), a.Sources, false)
	for j, k := range a.Keys {
		kp := p.child("keys").index(j)
		if !isName(k.Name) {
			errs.add(kp.child("name"), "must be 1-253 characters of [a-zA-Z0-9._/-], got %q", k.Name)
		}
		if _, dup := names[k.Name]; dup {
			errs.add(kp.child("name"), "duplicate key name %q", k.Name)
		} else {
			names[k.Name] = j
		}
		if k.Subject == "" || !isScope(k.Subject) {
			errs.add(kp.child("subject"), "must be a non-empty subject without spaces or control characters")
		}
		if !validKeyHash(k.Hash) {
			errs.add(kp.child("hash"), "must be \"sha256:\" and 64 lowercase hex digits (never the key itself)")
		} else if hashes[k.Hash] {
			errs.add(kp.child("hash"), "duplicate key hash (also used by another key)")
		}
		hashes[k.Hash] = true
		for s, sc := range k.Scopes {
			if !isScope(sc) {
				errs.add(kp.child("scopes").index(s), "must be a non-empty scope without spaces, got %q", sc)
			}
		}
	}
	return names
}

// HashAPIKey returns the form an API key takes in config: "sha256:" and the
// lowercase hex SHA-256 of the key. The plaintext never appears in config.
func HashAPIKey(key []byte) string {
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func validKeyHash(h string) bool {
	hexPart, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(hexPart) != 64 || strings.ToLower(hexPart) != hexPart {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

// validate checks a policy's access to API keys: the keys it names exist,
// its scope bound is well formed, and every key it accepts (all of them
// when it names none) carries only scopes within the bound. A key beyond
// it is reported at the key, so the controller names its Secret.
func (acc *APIKeyAccess) validate(errs *ErrorList, p Path, policy string, keys map[string]int, all []APIKey) {
	for j, s := range acc.AllowedScopes {
		if !isScope(s) {
			errs.add(p.child("allowedScopes").index(j), "must be a non-empty scope without spaces, got %q", s)
		}
	}
	named := make([]int, 0, len(acc.Keys))
	for j, n := range acc.Keys {
		i, ok := keys[n]
		if !ok {
			errs.add(p.child("keys").index(j), "no API key named %q in apiKeys.keys", n)
			continue
		}
		named = append(named, i)
	}
	if len(acc.Keys) == 0 { // every key
		for i := range all {
			named = append(named, i)
		}
	}
	for _, i := range named {
		// Reported at the key, so the controller names the Secret.
		if out := ScopesOutside(all[i].Scopes, acc.AllowedScopes); len(out) > 0 {
			allowed := "none"
			if len(acc.AllowedScopes) > 0 {
				allowed = fmt.Sprintf("%q", acc.AllowedScopes)
			}
			errs.add(Path{}.child("apiKeys", "keys").index(i).child("scopes"),
				"carries scope(s) %q that policy %q does not allow (it allows %s; an AuthPolicy sets them in spec.authentication.apiKeys.allowedScopes, by default the scopes its routes require)",
				out, policy, allowed)
		}
	}
	validateSources(errs, p.child("sources"), acc.Sources, false)
}
