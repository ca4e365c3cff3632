package config

import (
	"encoding/json"

	jose "github.com/go-jose/go-jose/v4"
)

// validateJWKS accepts only public signature keys.
func validateJWKS(errs *ErrorList, p Path, set *JSONWebKeySet) {
	if len(set.Keys) == 0 {
		errs.add(p.child("keys"), "must hold at least one key")
	}
	for j, raw := range set.Keys {
		kp := p.child("keys").index(j)
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			errs.add(kp, "not a valid JSON Web Key: %v", err)
			continue
		}
		if msg := CheckPublicSigningKey(&k); msg != "" {
			errs.add(kp, "%s", msg)
		}
	}
}

// CheckPublicSigningKey returns why a key must not be used to verify tokens,
// or "" when it is an acceptable public signature key.
func CheckPublicSigningKey(k *jose.JSONWebKey) string {
	if _, symmetric := k.Key.([]byte); symmetric {
		return "symmetric (oct) keys are refused: publish only public keys"
	}
	switch {
	case !k.Valid():
		return "invalid key"
	case !k.IsPublic():
		return "private or symmetric keys are refused: publish only public keys"
	case k.Use != "" && k.Use != "sig":
		return "key use must be sig"
	}
	return ""
}
