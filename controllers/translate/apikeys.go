package translate

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/authgate/authgate/api/v1alpha1"
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

// Bounds on an API key's length. The upper bound is the proxy's default
// limit on a credential's size: a longer key could never be presented.
const (
	MinKeyBytes = 16
	MaxKeyBytes = config.DefaultMaxTokenBytes
)

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
func checkKey(raw []byte) string {
	switch {
	case len(raw) < MinKeyBytes:
		return fmt.Sprintf("is shorter than %d bytes; use a long random key", MinKeyBytes)
	case len(raw) > MaxKeyBytes:
		return fmt.Sprintf("is longer than %d bytes, more than a proxy accepts in a credential", MaxKeyBytes)
	case !utf8.Valid(raw):
		return "is not UTF-8 text"
	}
	for _, r := range string(raw) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "contains whitespace or control characters (a trailing newline is a common cause)"
		}
	}
	return ""
}

// hashKey is the only place an API key's plaintext is used.
func hashKey(raw []byte) string { return config.HashAPIKey(raw) }

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
