package push_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// tenant is a namespace with a ServiceAccount and a Pod running as it
// (the pod never runs: envtest has no kubelet; a pod-bound token needs
// only the object).
type tenant struct {
	ns, sa string
	pod    *corev1.Pod
}

func newTenant(t *testing.T, cs kubernetes.Interface, prefix string) tenant {
	t.Helper()
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant{ns: ns.Name, sa: "fn"}
	if _, err := cs.CoreV1().ServiceAccounts(tn.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: tn.sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tn.pod = newPod(t, cs, tn, "fn-1")
	return tn
}

func newPod(t *testing.T, cs kubernetes.Interface, tn tenant, name string) *corev1.Pod {
	t.Helper()
	pod, err := cs.CoreV1().Pods(tn.ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: tn.sa,
			Containers:         []corev1.Container{{Name: "fn", Image: "example.invalid/fn:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// token is a TokenRequest token of the tenant's ServiceAccount for
// audiences (the API server's own when none), bound to pod when not nil.
func token(t *testing.T, cs kubernetes.Interface, tn tenant, pod *corev1.Pod, audiences ...string) string {
	t.Helper()
	exp := int64(600)
	spec := authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &exp}
	if pod != nil {
		spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := cs.CoreV1().ServiceAccounts(tn.ns).CreateToken(t.Context(), tn.sa, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	if testEnv == nil {
		t.Skip("no envtest binaries (make envtest)")
	}
	cs, err := kubernetes.NewForConfig(testEnv.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestTokenReviewerAPIServer: what a real API server answers for the
// tokens a sidecar (or an attacker) can present.
func TestTokenReviewerAPIServer(t *testing.T) {
	t.Parallel()
	cs := clientset(t)
	tn := newTenant(t, cs, "push-review")
	reviewer := func() *push.TokenReviewer { // uncached
		return push.NewTokenReviewer(cs.AuthenticationV1().TokenReviews(), push.ReviewOptions{})
	}
	good := token(t, cs, tn, tn.pod, pushapi.Audience)

	t.Run("pod-bound token for the push audience", func(t *testing.T) {
		id, err := reviewer().Authenticate(t.Context(), good)
		want := push.Identity{Namespace: tn.ns, ServiceAccount: tn.sa, Pod: tn.pod.Name, PodUID: string(tn.pod.UID)}
		if err != nil || id != want {
			t.Fatalf("got %+v, %v; want %+v", id, err, want)
		}
	})
	forged := func() string { // good's claims, another signature
		parts := strings.Split(good, ".")
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 256)))
	}()
	for _, tc := range []struct{ name, token string }{
		{"the API server's audience", token(t, cs, tn, tn.pod)},
		{"another audience", token(t, cs, tn, tn.pod, "https://example.com")},
		{"not bound to a pod", token(t, cs, tn, nil, pushapi.Audience)},
		{"forged signature", forged},
		{"garbage", "not-a-token"},
		{"garbage shaped as a JWS", "e30.e30.c2ln"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if id, err := reviewer().Authenticate(t.Context(), tc.token); !errors.Is(err, push.ErrInvalidCredential) {
				t.Fatalf("got %+v, %v; want ErrInvalidCredential", id, err)
			}
		})
	}
	t.Run("pod deleted", func(t *testing.T) {
		pod := newPod(t, cs, tn, "fn-deleted")
		tok := token(t, cs, tn, pod, pushapi.Audience)
		if _, err := reviewer().Authenticate(t.Context(), tok); err != nil {
			t.Fatalf("before the deletion: %v", err)
		}
		zero := int64(0)
		if err := cs.CoreV1().Pods(tn.ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		wait.ForNil(t, 0, func() error {
			_, err := cs.CoreV1().Pods(tn.ns).Get(t.Context(), pod.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return errors.New("pod still there")
		}, "the pod to be deleted")
		// The API server caches a successful authentication (10 s by
		// default), so the refusal comes within that.
		wait.ForNil(t, 0, func() error {
			if _, err := reviewer().Authenticate(t.Context(), tok); !errors.Is(err, push.ErrInvalidCredential) {
				return fmt.Errorf("got %w, want ErrInvalidCredential", err)
			}
			return nil
		}, "the token of the deleted pod to be refused")
	})
}

// secretBundles is the BundleReader the controller would use: the bundle
// Secret of the namespace.
func secretBundles(cs kubernetes.Interface) push.BundleReader {
	return func(ctx context.Context, ns string) ([]byte, error) {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, config.BundleSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return s.Data[config.BundleKey], nil
	}
}

func writeBundle(t *testing.T, cs kubernetes.Interface, ns string, data []byte) {
	t.Helper()
	if _, err := cs.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: config.BundleSecret},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{config.BundleKey: data},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestServerAPIServer: the server with a real TokenReviewer: each pod's
// token opens its own namespace's stream and acknowledges as itself; a
// token of another namespace gets only its own bundle; the pod's API
// token is refused.
func TestServerAPIServer(t *testing.T) {
	t.Parallel()
	cs := clientset(t)
	ta, tb := newTenant(t, cs, "push-a"), newTenant(t, cs, "push-b")
	writeBundle(t, cs, ta.ns, bundle(ta.ns, 3))
	writeBundle(t, cs, tb.ns, bundle(tb.ns, 9))
	h := start(t, push.Options{
		Auth: push.NewTokenReviewer(cs.AuthenticationV1().TokenReviews(), push.ReviewOptions{}),
		Read: secretBundles(cs),
	})
	tokA, tokB := token(t, cs, ta, ta.pod, pushapi.Audience), token(t, cs, tb, tb.pod, pushapi.Audience)

	a := h.watch(t, h.client(t), tokA)
	a.expect(t, bundle(ta.ns, 3), 3)
	b := h.watch(t, h.client(t), tokB)
	b.expect(t, bundle(tb.ns, 9), 9)
	if h.srv.Streams(ta.ns) != 1 || h.srv.Streams(tb.ns) != 1 {
		t.Fatalf("streams: %s %d, %s %d; want 1 each", ta.ns, h.srv.Streams(ta.ns), tb.ns, h.srv.Streams(tb.ns))
	}
	h.srv.Publish(ta.ns, bundle(ta.ns, 100))
	h.srv.Publish(tb.ns, bundle(tb.ns, 10))
	a.expect(t, bundle(ta.ns, 100), 100)
	b.expect(t, bundle(tb.ns, 10), 10)

	c := h.client(t)
	if code, _, body := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer "+tokA, ackJSON(ta.ns, 100, pushapi.SourcePush)); code != http.StatusNoContent {
		t.Fatalf("ack: got %d %s, want 204", code, body)
	}
	got, ok := h.acks.Snapshot(ta.ns)[ta.pod.Name]
	if !ok || got.Revision != 100 {
		t.Fatalf("acks of %s: %v, want %s at revision 100", ta.ns, h.acks.Snapshot(ta.ns), ta.pod.Name)
	}
	// A's token claiming B's policy is refused.
	if code, _, body := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer "+tokA, ackJSON(tb.ns, 10, pushapi.SourcePush)); code != http.StatusBadRequest {
		t.Fatalf("ack of another namespace's policy: got %d %s, want 400", code, body)
	}
	apiToken := token(t, cs, ta, ta.pod)
	if code, _, body := h.status(t, c, http.MethodGet, pushapi.WatchPath, "Bearer "+apiToken, ""); code != http.StatusUnauthorized || strings.Contains(body, apiToken) {
		t.Fatalf("the pod's API token: got %d %s, want 401", code, body)
	}
}
