package translate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/internal/keygen"
	"github.com/authgate/authgate/proxy/config"
)

// Data keys of an API-key Secret.
const (
	// SecretKeyKey holds the API key itself. It never leaves this package
	// except as its SHA-256.
	SecretKeyKey = "key"
	// SecretKeySubject is the identity the key authenticates as (default:
	// the Secret's name).
	SecretKeySubject = "subject"
	// SecretKeyScopes are the key's scopes, space-separated.
	SecretKeyScopes = "scopes"
	// SecretKeyExpiresAt is when the key stops working (RFC 3339).
	SecretKeyExpiresAt = "expiresAt"
)

// MaxKeyBytes bounds an API key's length: the proxy's default limit on a
// credential's size, so a longer key could never be presented. The lower
// bound is keygen.MinBits of estimated strength.
const MaxKeyBytes = config.DefaultMaxTokenBytes

// optInHint tells users why an existing object may be invisible: the
// controller only reads Secrets and ConfigMaps that opt in by label.
const (
	secretHint    = `API-key Secrets must carry the label ` + LabelAPIKey + `: "true" to be read`
	configMapHint = `Rego ConfigMaps must carry the label ` + LabelRole + `: ` + RoleRego + ` to be read`
)

// apiKeys resolves spec.authentication.apiKeys to hashed keys, sorted by
// name, and returns which Secret each key name came from.
func apiKeys(ns string, spec *v1alpha1.APIKeys, secrets []corev1.Secret) ([]config.APIKey, map[string]string, *Problem) {
	byName := map[string]*corev1.Secret{}
	for i := range secrets {
		s := &secrets[i]
		if s.Namespace != "" && s.Namespace != ns {
			continue
		}
		if _, dup := byName[s.Name]; !dup {
			byName[s.Name] = s
		}
	}
	selected := map[string]*corev1.Secret{}
	var missing []string
	for _, n := range spec.SecretNames {
		if s, ok := byName[n]; ok {
			selected[n] = s
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		missing = slices.Compact(missing)
		return nil, nil, problem(ReasonSecretNotFound, "spec.authentication.apiKeys.secretNames: Secret(s) %s not found in namespace %s (%s)",
			quoteAll(missing), ns, secretHint)
	}
	if spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
		if err != nil {
			return nil, nil, problem(ReasonInvalidSpec, "spec.authentication.apiKeys.selector: %v", err)
		}
		for n, s := range byName {
			if sel.Matches(labels.Set(s.Labels)) {
				selected[n] = s
			}
		}
	}
	if len(selected) == 0 {
		// A policy must never end up with an empty key list: in ProxyConfig
		// that means "every key of the bundle".
		return nil, nil, problem(ReasonSecretNotFound, "spec.authentication.apiKeys.selector selects no Secret in namespace %s (%s)", ns, secretHint)
	}
	names := make([]string, 0, len(selected))
	for n := range selected {
		names = append(names, n)
	}
	slices.Sort(names)
	keys := make([]config.APIKey, 0, len(names))
	secretOf := make(map[string]string, len(names))
	var bad []string
	for _, n := range names {
		k, msg := apiKey(ns, selected[n])
		if msg != "" {
			bad = append(bad, msg)
			continue
		}
		keys = append(keys, k)
		secretOf[k.Name] = n
	}
	if len(bad) > 0 {
		return nil, nil, problem(ReasonSecretInvalid, "%s", strings.Join(bad, "; "))
	}
	return keys, secretOf, nil
}

// boundKeys keeps the keys whose scopes are within the policy's
// allowedScopes (nil: no bound) and describes each one it leaves out,
// naming the Secret and the scopes, never the key.
func boundKeys(keys []config.APIKey, secretOf map[string]string, bound []string) (kept []config.APIKey, excluded []string) {
	for _, k := range keys {
		if out := config.ScopesOutside(k.Scopes, bound); len(out) > 0 {
			excluded = append(excluded, fmt.Sprintf("Secret %q (scopes %s)", secretOf[k.Name], quoteAll(out)))
			continue
		}
		kept = append(kept, k)
	}
	return kept, excluded
}

// apiKey reads and hashes one Secret's key. The returned message names the
// Secret and the problem, never the key.
func apiKey(ns string, s *corev1.Secret) (config.APIKey, string) {
	raw, ok := s.Data[SecretKeyKey]
	if !ok {
		return config.APIKey{}, fmt.Sprintf("Secret %q has no data %q holding the API key", s.Name, SecretKeyKey)
	}
	if why := checkKey(raw); why != "" {
		return config.APIKey{}, fmt.Sprintf("Secret %q: data %q %s", s.Name, SecretKeyKey, why)
	}
	k := config.APIKey{
		Name:    ns + "/" + s.Name,
		Subject: strings.TrimSpace(string(s.Data[SecretKeySubject])),
		Hash:    hashKey(raw),
		Scopes:  strings.Fields(string(s.Data[SecretKeyScopes])),
	}
	if k.Subject == "" {
		k.Subject = s.Name
	}
	if exp := strings.TrimSpace(string(s.Data[SecretKeyExpiresAt])); exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return config.APIKey{}, fmt.Sprintf("Secret %q: data %q must be an RFC 3339 time such as 2030-01-31T00:00:00Z, got %q", s.Name, SecretKeyExpiresAt, exp)
		}
		t = t.UTC()
		k.ExpiresAt = &t
	}
	return k, ""
}

// checkKey says what is wrong with a key, without quoting it.
func checkKey(raw []byte) string { return keygen.Check(raw, MaxKeyBytes) }

// hashKey is the only place an API key's plaintext is used.
func hashKey(raw []byte) string { return config.HashAPIKey(raw) }

// allowedScopes is the bound on the scopes of a policy's keys,
// spec.authentication.apiKeys.allowedScopes, sorted; nil when the spec sets
// none (no bound), an empty non-nil slice for an empty list.
func allowedScopes(spec *v1alpha1.APIKeys) []string {
	if spec == nil || spec.AllowedScopes == nil {
		return nil
	}
	out := slices.Clone(spec.AllowedScopes)
	slices.Sort(out)
	return slices.Compact(out)
}

// KeyScopeBound is the scope bound of a policy's API keys as its spec sets
// it now (nil: none).
func KeyScopeBound(p *v1alpha1.AuthPolicy) []string {
	if a := p.Spec.Authentication; a != nil {
		return allowedScopes(a.APIKeys)
	}
	return nil
}

// apiKeySources converts the spec's sources, defaulting to the X-API-Key
// header explicitly: a policy reads its keys only where it names, whatever
// other policies of the namespace read.
func apiKeySources(in []v1alpha1.CredentialSource) []config.CredentialSource {
	if out := sources(in); len(out) > 0 {
		return out
	}
	return []config.CredentialSource{{Type: config.SourceHeader, Name: config.DefaultAPIKeyHeader}}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
