package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/testca"
	"github.com/authgate/authgate/test/wait"
)

// caPolicy trusts issuerURL with the CA bundle in key (default ca.crt when
// "") of ConfigMap cm.
func caPolicy(t *testing.T, ns, name, issuerURL, cm, key string) *v1alpha1.AuthPolicy {
	t.Helper()
	ref := fmt.Sprintf("{name: %s}", cm)
	if key != "" {
		ref = fmt.Sprintf("{name: %s, key: %s}", cm, key)
	}
	return policyFromYAML(t, ns, fmt.Sprintf(`
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: %s}
spec:
  selector: {matchLabels: {app: fn}}
  authentication:
    jwt:
      - issuerURL: %q
        audiences: [fn]
        certificateAuthority: {configMapKeyRef: %s}
  routes: [{name: all}]
`, name, issuerURL, ref))
}

// caConfigMap is a ConfigMap holding data; labelled as a CA bundle unless
// it is kube-root-ca.crt, which Kubernetes publishes without labels.
func caConfigMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if name != translate.ClusterCAConfigMap {
		cm.Labels = map[string]string{translate.LabelRole: translate.RoleCA}
	}
	return cm
}

// bundleCA returns the caBundle of the namespace's first rendered issuer.
func bundleCA(t *testing.T, ns string) string {
	t.Helper()
	c, _ := bundleConfig(t, ns)
	if c == nil || len(c.Issuers) == 0 {
		return ""
	}
	return c.Issuers[0].CABundle
}

// An issuer served on https by a private CA is trusted with that CA from a
// ConfigMap of the policy's namespace (a labelled one, or kube-root-ca.crt
// as Kubernetes publishes it): the policy is Ready, and the bundle ships
// the keys inline and the CA bundle for the sidecars' own refreshes.
func TestIssuerTrustedWithCABundle(t *testing.T) {
	ca := testca.New(t)
	for _, tt := range []struct{ name, cm, key string }{
		{"labelled configmap, default key", "idp-ca", ""},
		{"labelled configmap, named key", "idp-ca", "bundle.pem"},
		{"kube-root-ca.crt", translate.ClusterCAConfigMap, "ca.crt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			idp := faultidp.NewTLS(t, ca)
			ns := newNamespace(t)
			key := tt.key
			if key == "" {
				key = translate.ClusterCAKey
			}
			if err := k8s.Create(ctx, caConfigMap(ns, tt.cm, map[string]string{key: "# the IdP's CA\n" + ca.PEM})); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Create(ctx, caPolicy(t, ns, "fn", idp.URL, tt.cm, tt.key)); err != nil {
				t.Fatal(err)
			}
			wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "fn", idp) }, "the policy Ready with the IdP's keys")
			if got := bundleCA(t, ns); got != ca.PEM {
				t.Fatalf("got caBundle %q in the rendered issuer, want the CA's normalized PEM", got)
			}
		})
	}
}

// A CA bundle that does not resolve refuses the policy, naming the
// ConfigMap and key (never the content), and the issuer is never fetched,
// in particular not with the system roots instead.
func TestUnusableCABundleRefusesThePolicy(t *testing.T) {
	ca := testca.New(t)
	const garbage = "not-a-certificate-0123456789"
	tests := []struct {
		name       string
		data       map[string]string // nil: no ConfigMap
		unlabelled bool
		wantReason string
		wantInMsg  []string
	}{
		{name: "missing configmap", wantReason: translate.ReasonConfigMapNotFound,
			wantInMsg: []string{`ConfigMap "idp-ca" not found`, "certificateAuthority.configMapKeyRef", translate.LabelRole}},
		{name: "unlabelled configmap", data: map[string]string{"ca.crt": ca.PEM}, unlabelled: true, wantReason: translate.ReasonConfigMapNotFound,
			wantInMsg: []string{`ConfigMap "idp-ca" not found`}},
		{name: "missing key", data: map[string]string{"other": ca.PEM}, wantReason: translate.ReasonCAKeyNotFound,
			wantInMsg: []string{`ConfigMap "idp-ca" has no key "ca.crt"`, "keys: other"}},
		{name: "garbage", data: map[string]string{"ca.crt": garbage}, wantReason: translate.ReasonCABundleInvalid,
			wantInMsg: []string{`key "ca.crt" of ConfigMap "idp-ca"`, "holds no PEM CERTIFICATE block"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			idp := faultidp.NewTLS(t, ca)
			ns := newNamespace(t)
			if tt.data != nil {
				cm := caConfigMap(ns, "idp-ca", tt.data)
				if tt.unlabelled {
					cm.Labels = nil
				}
				if err := k8s.Create(ctx, cm); err != nil {
					t.Fatal(err)
				}
			}
			if err := k8s.Create(ctx, caPolicy(t, ns, "fn", idp.URL, "idp-ca", "")); err != nil {
				t.Fatal(err)
			}
			p := waitCondition(t, ns, "fn", v1alpha1.ConditionAccepted, metav1.ConditionFalse, tt.wantReason)
			msg := condition(p, v1alpha1.ConditionAccepted).Message
			for _, want := range tt.wantInMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("got message %q, want it to contain %q", msg, want)
				}
			}
			if strings.Contains(msg, garbage) || strings.Contains(msg, "BEGIN") {
				t.Errorf("got message %q quoting the ConfigMap's content, want only its name and key", msg)
			}
			waitCondition(t, ns, "fn", v1alpha1.ConditionReady, metav1.ConditionFalse, controllers.ReasonNotRendered)
			waitCondition(t, ns, "fn", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonCAUnresolved)
			if c, _ := bundleConfig(t, ns); c != nil && len(c.Issuers) > 0 {
				t.Fatalf("got issuers %v rendered, want none", c.Issuers)
			}
			if n := idp.Hits(faultidp.All); n != 0 {
				t.Fatalf("got %d requests to the IdP, want none: an unresolved CA must not fall back to the system roots", n)
			}
		})
	}
}

// Without certificateAuthority the system roots apply, which do not trust
// the private CA: the keys are never fetched.
func TestPrivateCAIssuerWithoutCABundleFailsOnTheCertificate(t *testing.T) {
	ctx := context.Background()
	idp := faultidp.NewTLS(t, testca.New(t))
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "fn", idp.URL)); err != nil {
		t.Fatal(err)
	}
	p := waitCondition(t, ns, "fn", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonFetchFailed)
	if len(p.Status.Issuers) != 1 || !strings.Contains(p.Status.Issuers[0].Error, "certificate") {
		t.Fatalf("got issuer status %+v, want a certificate error", p.Status.Issuers)
	}
}

// Rotating the CA ConfigMap's content re-renders: an issuer the old CA does
// not trust gets its keys once the ConfigMap holds its CA, and the bundle
// ships the new CA. Both kinds of CA ConfigMap are watched.
func TestRotatingTheCAConfigMapReRenders(t *testing.T) {
	for _, name := range []string{"idp-ca", translate.ClusterCAConfigMap} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ca, other := testca.New(t), testca.New(t)
			idp := faultidp.NewTLS(t, ca)
			ns := newNamespace(t)
			cm := caConfigMap(ns, name, map[string]string{"ca.crt": other.PEM})
			if err := k8s.Create(ctx, cm); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Create(ctx, caPolicy(t, ns, "fn", idp.URL, name, "")); err != nil {
				t.Fatal(err)
			}
			p := waitCondition(t, ns, "fn", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonFetchFailed)
			if !strings.Contains(p.Status.Issuers[0].Error, "certificate") {
				t.Fatalf("got issuer error %q with the wrong CA, want a certificate error", p.Status.Issuers[0].Error)
			}
			if got := bundleCA(t, ns); got != other.PEM {
				t.Fatalf("got caBundle %q, want the configured (wrong) CA", got)
			}
			cm.Data = map[string]string{"ca.crt": ca.PEM}
			if err := k8s.Update(ctx, cm); err != nil {
				t.Fatal(err)
			}
			wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "fn", idp) }, "the policy Ready with the IdP's keys after the CA rotation")
			if got := bundleCA(t, ns); got != ca.PEM {
				t.Fatalf("got caBundle %q after the rotation, want the new CA", got)
			}
		})
	}
}

// Policies of different namespaces trusting one issuer with the same CA
// (byte for byte or not) share one fetcher; another CA bundle is another
// fetcher, even when it also trusts the issuer.
func TestCABundleDecidesWhichPoliciesShareAFetch(t *testing.T) {
	ctx := context.Background()
	ca, other := testca.New(t), testca.New(t)
	idp := faultidp.NewTLS(t, ca)
	idp.SetCacheControl("max-age=3600") // refreshed after MaxRefresh: only first fetches count
	start := func(bundle string) string {
		ns := newNamespace(t)
		if err := k8s.Create(ctx, caConfigMap(ns, "idp-ca", map[string]string{"ca.crt": bundle})); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Create(ctx, caPolicy(t, ns, "fn", idp.URL, "idp-ca", "")); err != nil {
			t.Fatal(err)
		}
		wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "fn", idp) }, "%s Ready with the IdP's keys", ns)
		return ns
	}
	start(ca.PEM)
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d JWKS fetches for the first policy, want 1", n)
	}
	start("# the same CA, formatted otherwise\r\n" + strings.ReplaceAll(ca.PEM, "\n", "\r\n"))
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d JWKS fetches for two policies trusting the issuer with the same CA, want 1 (shared)", n)
	}
	start(other.PEM + ca.PEM)
	wait.For(t, settle, func() bool { return idp.Hits(faultidp.JWKS) >= 2 }, "a fetch for the other CA bundle")
	time.Sleep(500 * time.Millisecond)
	if n := idp.Hits(faultidp.JWKS); n != 2 {
		t.Fatalf("got %d JWKS fetches for two CA bundles, want 2 (one each)", n)
	}
}
