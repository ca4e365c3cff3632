package translate

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

const testNS = "team-a"

// policyYAML builds an AuthPolicy in testNS from a spec written in YAML.
func policyYAML(t *testing.T, name, spec string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p v1alpha1.AuthPolicy
	doc := fmt.Sprintf("apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: %s, namespace: %s, generation: 3}\nspec:\n%s", name, testNS, indent(spec))
	if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
		t.Fatalf("policy fixture: %v\n%s", err, doc)
	}
	return &p
}

func indent(s string) string {
	var b bytes.Buffer
	for _, line := range bytes.Split([]byte(s), []byte("\n")) {
		b.WriteString("  ")
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// secret is an API-key Secret of testNS; data holds extra data keys.
func secret(name, key string, labels map[string]string, data ...string) corev1.Secret {
	s := corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Labels: labels},
		Data:       map[string][]byte{},
	}
	if key != "" {
		s.Data[SecretKeyKey] = []byte(key)
	}
	for i := 0; i+1 < len(data); i += 2 {
		s.Data[data[i]] = []byte(data[i+1])
	}
	return s
}

// testJWK is a deterministic ES256 public key (a fixed private scalar), so
// tests and goldens need no key generation at run time.
func testJWK(t *testing.T, kid string) config.RawJSON {
	t.Helper()
	scalar := sha256.Sum256([]byte("authgate test key " + kid))
	priv, err := ecdh.P256().NewPrivateKey(scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.PublicKey().Bytes() // 0x04 || X || Y
	b64 := base64.RawURLEncoding.EncodeToString
	raw, err := json.Marshal(map[string]string{
		"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
		"x": b64(pub[1:33]), "y": b64(pub[33:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// keysFor answers Input.Keys with set for one issuer URL.
func keysFor(issuerURL string, set config.JSONWebKeySet) func(string) (config.JSONWebKeySet, bool) {
	return func(u string) (config.JSONWebKeySet, bool) {
		if u == issuerURL {
			return set, true
		}
		return config.JSONWebKeySet{}, false
	}
}

// mustTranslate translates and fails the test on a Problem.
func mustTranslate(t *testing.T, in Input) *Fragment {
	t.Helper()
	f, prob := Translate(context.Background(), in)
	if prob != nil {
		t.Fatalf("got problem %v, want none", prob)
	}
	return f
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
