package certs_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/authgate/authgate/controllers/certs"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	valid := func() certs.Options {
		return certs.Options{Namespace: "ns", SecretName: "s", ServiceName: "svc", WebhookConfigName: "w", CertDir: "/tmp/x", Client: k8s}
	}
	if _, err := certs.New(valid()); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*certs.Options)
		want   string
	}{
		{"no namespace", func(o *certs.Options) { o.Namespace = "" }, "namespace is required"},
		{"no client", func(o *certs.Options) { o.Client = nil }, "client is required"},
		{"no cert dir", func(o *certs.Options) { o.CertDir = "" }, "cert dir is required"},
		{"renew before too long", func(o *certs.Options) { o.CertValidity, o.RenewBefore = time.Hour, time.Hour }, "renew before (1h0m0s) must be less"},
		{"CA renew before too long", func(o *certs.Options) { o.CAValidity, o.CARenewBefore = time.Hour, 2*time.Hour }, "CA renew before (2h0m0s) must be less"},
		{"CA renew before under renew before plus overlap", func(o *certs.Options) {
			o.CARenewBefore, o.RenewBefore, o.CAOverlap = 48*time.Hour, 47*time.Hour, 2*time.Hour
		}, "must exceed renew before"},
		{"negative", func(o *certs.Options) { o.CheckInterval = -time.Second }, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := valid()
			tc.change(&o)
			_, err := certs.New(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: got %v, want an error containing %q", err, tc.want)
			}
			if err := o.Validate(); (err == nil) != (tc.name == "no client") {
				t.Errorf("Validate: got %v", err)
			}
		})
	}
}

// Start retries until the webhook configuration exists, then is ready,
// and returns nil when its context ends.
func TestStartRetriesUntilReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.options(k8s)
	o.WebhookConfigName = "late-" + e.ns
	m, err := certs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if m.NeedLeaderElection() {
		t.Error("NeedLeaderElection: got true, want false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	time.Sleep(1500 * time.Millisecond) // let the first attempts fail
	select {
	case <-m.Ready():
		t.Fatal("ready without the webhook configuration")
	default:
	}
	whc := webhookConfig(o.WebhookConfigName, "https://127.0.0.1:1/mutate")
	if err := k8s.Create(context.Background(), whc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), whc) })
	select {
	case <-m.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("not ready 30s after the webhook configuration appeared")
	}
	e.whc = o.WebhookConfigName
	e.check(m, o.CertDir, nil)
	if err := certs.ReadyzCheck(m)(httptest.NewRequest("GET", "/readyz", nil)); err != nil {
		t.Errorf("readyz: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
}

// The real API server calls a webhook served with GetCertificate and
// trusting the published caBundle, with failurePolicy Fail, through a CA
// rotation: every call succeeds on the first try. The API server checks
// validity against the real time, so the fake clock starts six days in
// the past and only moves up to now (expiry of the old CA is covered by
// TestEnsureRotatesCA).
func TestAPIServerTrustsTheWebhookAcrossCARotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	e := newEnv(t)
	e.clock = &clock{t: time.Now().Add(-(6*day + 3*time.Hour))}
	e.svc = "localhost" // the certificate's first DNS name; the API server dials https://localhost
	o := e.options(k8s)
	o.CAValidity, o.CARenewBefore, o.CertValidity, o.RenewBefore = 10*day, 4*day, 9*day, 2*day
	m, err := certs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admit(&calls), ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false) // a handshake per call
	go func() { _ = srv.Serve(tlsListener(ln, m)) }()
	t.Cleanup(func() { _ = srv.Close() })

	// Point the webhooks at the server, fail closed, and label a namespace
	// for them.
	whc := e.webhooks()
	url := fmt.Sprintf("https://localhost:%d/mutate", ln.Addr().(*net.TCPAddr).Port)
	for i := range whc.Webhooks {
		whc.Webhooks[i].ClientConfig.URL = ptr.To(url)
		whc.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	}
	if err := k8s.Update(ctx, whc); err != nil {
		t.Fatal(err)
	}
	target := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "certs-target-", Labels: map[string]string{"authgate-test": e.whc}}}
	if err := k8s.Create(ctx, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), target) })
	create := func(step string) error {
		before := calls.Load()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: target.Name, GenerateName: "c-"}}
		if err := k8s.Create(ctx, cm); err != nil {
			return fmt.Errorf("%s: create configmap: %w", step, err)
		}
		if got := calls.Load() - before; got != 2 {
			return fmt.Errorf("%s: webhook called %d times, want 2", step, got)
		}
		return nil
	}

	// Fresh issue; wait until the API server has the new configuration.
	e.ensure(m)
	ca1 := e.check(m, o.CertDir, nil).cas[0]
	deadline := time.Now().Add(30 * time.Second)
	for err := create("first issue"); err != nil; err = create("first issue") {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The CA is due: both CAs are published, the old certificate still
	// serves, whichever bundle the API server holds.
	e.clock.Advance(6*day + time.Hour)
	e.ensure(m)
	st := e.check(m, o.CertDir, ca1)
	if len(st.cas) != 2 {
		t.Fatalf("trusted CAs %s, want 2", names(st.cas))
	}
	if err := create("new CA published"); err != nil {
		t.Fatal(err)
	}

	// After the overlap (its real-time stand-in: the API server's watch
	// has long delivered the new bundle) the new CA signs.
	time.Sleep(2 * time.Second)
	e.clock.Advance(time.Hour)
	e.ensure(m)
	e.check(m, o.CertDir, st.cas[0])
	if err := create("serving certificate from the new CA"); err != nil {
		t.Fatal(err)
	}
}

func tlsListener(ln net.Listener, m *certs.Manager) net.Listener {
	return tls.NewListener(ln, &tls.Config{GetCertificate: m.GetCertificate, MinVersion: tls.VersionTLS12})
}

// admit allows every request and counts the calls.
func admit(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, errors.New("bad review").Error(), http.StatusBadRequest)
			return
		}
		calls.Add(1)
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	})
}
