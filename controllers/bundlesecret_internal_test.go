package controllers

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

const brokenRego = "package authgate.authz\n\ndecision := \n"

// fakeReconciler is a Reconciler with nothing in memory (a controller
// just upgraded or started) over a fake API server holding objs. The
// issuer refresher is not started: every issuer stays Pending.
func fakeReconciler(t *testing.T, objs ...client.Object) (*Reconciler, client.Client) {
	t.Helper()
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&v1alpha1.AuthPolicy{}).Build()
	return &Reconciler{
		Client: c, APIReader: c,
		Issuers:  issuers.New(issuers.Options{MinRefresh: time.Second, FetchTimeout: time.Second}),
		Recorder: events.NewFakeRecorder(100), Metrics: NewMetrics(prometheus.NewRegistry()),
		Now: time.Now, MaxRequeue: time.Minute,
	}, c
}

func reconcileNS(t *testing.T, r *Reconciler, ns string) {
	t.Helper()
	if _, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Name: ns}}); err != nil {
		t.Fatal(err)
	}
}

// legacyConfigMap is the bundle ConfigMap as earlier versions wrote it.
func legacyConfigMap(ns string, labels map[string]string, data []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: LegacyBundleConfigMap, Labels: labels,
			Annotations: map[string]string{AnnotationBundleHash: bundle.Hash(data)}},
		Data: map[string]string{config.BundleKey: string(data)},
	}
}

func getBundleSecret(t *testing.T, c client.Client, ns string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s); err != nil {
		t.Fatalf("the bundle Secret: %v", err)
	}
	return &s
}

func legacyExists(t *testing.T, c client.Client, ns string) bool {
	t.Helper()
	err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: LegacyBundleConfigMap}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// The bundle lands in an Opaque Secret marked as the ConfigMap was; the
// legacy ConfigMap is deleted only when this controller wrote it.
func TestBundleSecretAndLegacyConfigMap(t *testing.T) {
	t.Parallel()
	old, err := bundle.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		legacy     map[string]string // labels of a ConfigMap of the legacy name; nil: none
		wantKept   bool
		wantRender bool
	}{
		{name: "no legacy configmap"},
		{name: "legacy configmap written by the controller", legacy: bundleLabels()},
		{name: "configmap of that name written by someone else", legacy: map[string]string{"app": "mine"}, wantKept: true},
		{name: "labelled bundle but not managed by the controller", legacy: map[string]string{translate.LabelRole: RoleBundle}, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := publicPolicy("u1", 1, "")
			objs := []client.Object{&p}
			if tt.legacy != nil {
				objs = append(objs, legacyConfigMap("ns", tt.legacy, old))
			}
			r, c := fakeReconciler(t, objs...)
			reconcileNS(t, r, "ns")
			s := getBundleSecret(t, c, "ns")
			if s.Type != corev1.SecretTypeOpaque {
				t.Errorf("got type %q, want %q", s.Type, corev1.SecretTypeOpaque)
			}
			if !ours(s.Labels) || s.Annotations[AnnotationBundleHash] != bundle.Hash(s.Data[config.BundleKey]) {
				t.Errorf("got labels %v and annotations %v, want the controller's marks and the content's hash", s.Labels, s.Annotations)
			}
			frags, err := bundle.Fragments(s.Data[config.BundleKey])
			if err != nil || frags["ns/a"] == nil || frags["ns/a"].Policy.Version != "1" {
				t.Fatalf("got fragments %v (%v), want generation 1 of ns/a", frags, err)
			}
			if got := legacyExists(t, c, "ns"); got != tt.wantKept {
				t.Fatalf("got legacy ConfigMap present %v, want %v", got, tt.wantKept)
			}
			var got v1alpha1.AuthPolicy
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(&p), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Bundle != config.BundleSecret {
				t.Errorf("got status.bundle %q, want %q", got.Status.Bundle, config.BundleSecret)
			}
			if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != ReasonRendered ||
				c.Message != "generation 1 is rendered into Secret "+config.BundleSecret+" for the sidecars" {
				t.Errorf("got Ready %+v, want Rendered into the Secret", c)
			}
		})
	}
}

// An upgrade while a policy is rejected: the new controller has no Secret
// and nothing in memory, and seeds the last good generation from the
// legacy ConfigMap, so the sidecars keep enforcing it rather than deny.
func TestUpgradeKeepsTheLastGoodGenerationOfTheLegacyConfigMap(t *testing.T) {
	t.Parallel()
	data, err := bundle.Render([]*translate.Fragment{fragmentOf(t, publicPolicy("u1", 1, ""))})
	if err != nil {
		t.Fatal(err)
	}
	rejected := publicPolicy("u1", 2, brokenRego)
	r, c := fakeReconciler(t, &rejected, legacyConfigMap("ns", bundleLabels(), data))
	reconcileNS(t, r, "ns")
	frags, err := bundle.Fragments(getBundleSecret(t, c, "ns").Data[config.BundleKey])
	if err != nil || frags["ns/a"] == nil || frags["ns/a"].Policy.Version != "1" {
		t.Fatalf("got fragments %v (%v), want the last good generation 1 of ns/a", frags, err)
	}
	if legacyExists(t, c, "ns") {
		t.Fatal("got the legacy ConfigMap kept, want it deleted once the Secret is written")
	}
	var got v1alpha1.AuthPolicy
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(&rejected), &got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != ReasonLastGoodGeneration {
		t.Fatalf("got Ready %+v, want %s", c, ReasonLastGoodGeneration)
	}
}

// An upgrade while an issuer's first key fetch has not ended: the bundle
// is kept as it is (it may ship the issuer's keys), so the legacy
// ConfigMap's content moves into the Secret unchanged (stamped with a
// revision, which orders it for the sidecars).
func TestUpgradeWithAPendingIssuerMovesTheLegacyBundle(t *testing.T) {
	t.Parallel()
	p := publicPolicy("u1", 1, "")
	p.Spec.Authentication = &v1alpha1.Authentication{JWT: []v1alpha1.JWTIssuer{{IssuerURL: "https://idp.example.com", Audiences: []string{"fn"}}}}
	p.Spec.Routes = []v1alpha1.Route{{Name: "all"}}
	data := []byte("# the legacy bundle, byte for byte\n")
	r, c := fakeReconciler(t, &p, legacyConfigMap("ns", bundleLabels(), data))
	reconcileNS(t, r, "ns")
	s := getBundleSecret(t, c, "ns")
	if got := s.Data[config.BundleKey]; string(bundle.Stamp(got, 0)) != string(data) || bundle.Revision(got) == 0 || !ours(s.Labels) {
		t.Fatalf("got bundle %q labelled %v, want the legacy bundle moved unchanged with a revision", got, s.Labels)
	}
	if legacyExists(t, c, "ns") {
		t.Fatal("got the legacy ConfigMap kept, want it deleted once the Secret is written")
	}
}

// writeBundle repairs the controller's marks, leaves an up-to-date bundle
// alone and refuses a Secret of another type under the bundle's name.
func TestWriteBundle(t *testing.T) {
	t.Parallel()
	data := []byte("policies: []\n")
	marked := func(typ corev1.SecretType, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: config.BundleSecret, Labels: labels,
				Annotations: map[string]string{AnnotationBundleHash: bundle.Hash(data)}},
			Type: typ, Data: map[string][]byte{config.BundleKey: data},
		}
	}
	tests := []struct {
		name        string
		existing    *corev1.Secret
		wantErr     bool
		wantWritten bool
	}{
		{name: "up to date", existing: marked(corev1.SecretTypeOpaque, bundleLabels())},
		{name: "labels stripped", existing: marked(corev1.SecretTypeOpaque, nil), wantWritten: true},
		{name: "another type", existing: marked(corev1.SecretTypeTLS, bundleLabels()), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, c := fakeReconciler(t, tt.existing)
			cur, err := r.readBundle(t.Context(), "ns")
			if err != nil {
				t.Fatal(err)
			}
			err = r.writeBundle(t.Context(), "ns", data, cur)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			after := getBundleSecret(t, c, "ns")
			if written := after.ResourceVersion != cur.ResourceVersion; written != tt.wantWritten {
				t.Fatalf("got the Secret written %v, want %v", written, tt.wantWritten)
			}
			if tt.wantWritten && !ours(after.Labels) {
				t.Fatalf("got labels %v, want the controller's marks back", after.Labels)
			}
		})
	}
}

// Every change of a bundle is stamped with a higher revision, whatever the
// clock says; an unchanged one is not written again.
func TestWriteBundleRevisionIncreases(t *testing.T) {
	t.Parallel()
	r, c := fakeReconciler(t)
	frozen := time.UnixMilli(1_000_000)
	r.Now = func() time.Time { return frozen }
	var last int64
	for i, data := range []string{"policies: []\n", "policies: []\n", "defaultAction: deny\n", "policies: []\n"} {
		cur, err := r.readBundle(t.Context(), "ns")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.writeBundle(t.Context(), "ns", []byte(data), cur); err != nil {
			t.Fatal(err)
		}
		got := bundle.Revision(getBundleSecret(t, c, "ns").Data[config.BundleKey])
		switch {
		case i == 1 && got != last:
			t.Fatalf("write %d (same content): revision %d, want it kept at %d", i, got, last)
		case i != 1 && got <= last:
			t.Fatalf("write %d: revision %d, want above %d", i, got, last)
		}
		last = got
	}
}
