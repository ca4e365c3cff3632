package translate

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/proxy/config"
)

// RefreshKeys re-resolves the API keys of a last good fragment (one kept
// while the policy's current generation is rejected) against the Secrets as
// they are now: a deleted, unlabelled or invalid Secret's key is dropped and
// a rotated one is re-hashed, so keeping an old generation never keeps a
// revoked key. It returns nil when the fragment accepted API keys and none
// is left: an empty key list would mean "every key", so the policy is not
// rendered at all (fail closed).
//
// bound is the scope bound of the policy's current spec (nil: none): a key
// must fit it as well as the kept generation's, so narrowing
// allowedScopes applies at once, even while the generation that narrows it
// is rejected for another reason.
func RefreshKeys(f *Fragment, ns string, secrets []corev1.Secret, bound []string) *Fragment {
	if len(f.APIKeys) == 0 {
		return f
	}
	byName := make(map[string]*corev1.Secret, len(secrets))
	for i := range secrets {
		if secrets[i].Namespace == ns || secrets[i].Namespace == "" {
			byName[ns+"/"+secrets[i].Name] = &secrets[i]
		}
	}
	out := *f
	out.Policy = f.Policy // Authentication is a value: replacing its APIKeys below leaves f intact
	out.APIKeys = nil
	kept := map[string]bool{}
	for _, old := range f.APIKeys {
		s, ok := byName[old.Name]
		if !ok || !strings.HasPrefix(old.Name, ns+"/") {
			continue
		}
		k, msg := apiKey(ns, s)
		if msg != "" {
			continue
		}
		if acc := f.Policy.Authentication.APIKeys; acc != nil && len(config.ScopesOutside(k.Scopes, acc.AllowedScopes)) > 0 {
			continue // its Secret now claims more than the kept generation allows
		}
		if len(config.ScopesOutside(k.Scopes, bound)) > 0 {
			continue // or more than the current spec allows
		}
		out.APIKeys = append(out.APIKeys, k)
		kept[k.Name] = true
	}
	if acc := out.Policy.Authentication.APIKeys; acc != nil {
		names := acc.Keys[:0:0]
		for _, n := range acc.Keys {
			if kept[n] {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return nil
		}
		out.Policy.Authentication.APIKeys = &config.APIKeyAccess{Keys: names}
	}
	return &out
}
