package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/controllers/assertionkeys"
	"github.com/authgate/authgate/internal/assertionkey"
)

const assertionPolicy = "selector: {matchLabels: {a: b}}\nroutes: [{name: a, public: true}]\n"

func assertionDoc(name, extra string) string {
	return fmt.Sprintf("apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: %s}\nspec:\n%s\n", name, indent(assertionPolicy+extra))
}

// The controller creates the namespace's ring and public keys when a policy
// enables the assertion, serves them, and deletes both when none does.
func TestAssertionKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	p := policyFromYAML(t, ns, assertionDoc("asserted", "identityAssertion: {ttl: 30s}"))
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	secret, cm := &corev1.Secret{}, &corev1.ConfigMap{}
	deadline := time.Now().Add(settle)
	for {
		err1 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: assertionkey.SecretName}, secret)
		err2 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: assertionkey.JWKSConfigMapName}, cm)
		if err1 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no key Secret (%v) or JWKS ConfigMap (%v) after %s", err1, err2, settle)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ring, err := assertionkey.Parse(secret.Data[assertionkey.SecretKey])
	if err != nil || len(ring.Keys) != 1 {
		t.Fatalf("got ring %d keys, %v; want one usable key", len(ring.Keys), err)
	}
	if secret.Labels["app.kubernetes.io/managed-by"] != "authgate-controller" || cm.Labels["authgate.dev/role"] != assertionkeys.RoleJWKS {
		t.Fatalf("got labels %v and %v", secret.Labels, cm.Labels)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(cm.Data[assertionkey.JWKSKey]), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("got JWKS %q, %v", cm.Data[assertionkey.JWKSKey], err)
	}
	if !set.Keys[0].IsPublic() || set.Keys[0].KeyID != ring.Keys[0].KID() {
		t.Fatal("the ConfigMap holds a private key or another key than the ring's")
	}

	srv := httptest.NewServer((&assertionkeys.Server{Reader: k8s}).Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/namespaces/" + ns + "/jwks.json"); code != 200 || body != cm.Data[assertionkey.JWKSKey] {
		t.Fatalf("got %d %q, want the ConfigMap's JWKS", code, body)
	}
	if code, _ := get("/namespaces/default/jwks.json"); code != http.StatusNotFound {
		t.Fatalf("got %d for a namespace without keys, want 404", code)
	}
	if code, _ := get("/namespaces/..%2Fx/jwks.json"); code == 200 {
		t.Fatal("served a JWKS for a malformed namespace")
	}

	cfg, _ := bundleConfig(t, ns)
	if a := cfg.Policies[0].IdentityAssertion; a == nil || a.Issuer != "authgate://"+ns || a.Audience != "asserted" || a.TTL.Duration != 30*time.Second {
		t.Fatalf("got rendered assertion %+v", a)
	}

	if err := k8s.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(settle)
	for {
		err1 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: assertionkey.SecretName}, &corev1.Secret{})
		err2 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: assertionkey.JWKSConfigMapName}, &corev1.ConfigMap{})
		if apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key Secret (%v) or JWKS ConfigMap (%v) still there after the last policy went", err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The CEL rules of spec.identityAssertion run in the API server.
func TestAPIServerChecksIdentityAssertion(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for i, tt := range []struct{ name, spec, want string }{
		{"ttl too short", "identityAssertion: {ttl: 1s}", "ttl must be between 10s and 5m"},
		{"ttl too long", "identityAssertion: {ttl: 10m}", "ttl must be between 10s and 5m"},
		{"header outside the namespace", "identityAssertion: {header: X-Assertion}", "spec.identityAssertion.header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := k8s.Create(ctx, policyFromYAML(t, ns, assertionDoc(fmt.Sprintf("bad-%d", i), tt.spec)))
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tt.want)
			}
		})
	}
}
