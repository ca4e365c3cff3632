package certs_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/controllers/certs"
)

const (
	secretName  = "authgate-webhook-tls"
	serviceName = "authgate-webhook"
)

// t0 is the tests' epoch: certificates are issued against a fake clock.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one test's world: a namespace, a webhook configuration with two
// webhooks, and a clock.
type env struct {
	t     *testing.T
	ns    string
	whc   string
	svc   string
	clock *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "certs-"}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	whc := webhookConfig(ns.Name, "https://127.0.0.1:1/mutate")
	if err := k8s.Create(ctx, whc); err != nil {
		t.Fatalf("create webhook configuration: %v", err)
	}
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), whc)
		_ = k8s.Delete(context.Background(), ns)
	})
	return &env{t: t, ns: ns.Name, whc: whc.Name, svc: serviceName, clock: newClock()}
}

// webhookConfig has two webhooks for objects in namespaces labelled
// authgate-test=<name>; failurePolicy Ignore unless a test changes it.
func webhookConfig(name, url string) *admissionregistrationv1.MutatingWebhookConfiguration {
	hook := func(n string) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    n + "." + name + ".authgate.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url)},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			TimeoutSeconds:          ptr.To[int32](5),
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"authgate-test": name}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{hook("first"), hook("second")},
	}
}

// options are short lifetimes: CA 30d (renewed with 10d left), serving
// certificate 7d (renewed with 2d left), CA overlap 1h.
func (e *env) options(c client.Client) certs.Options {
	return certs.Options{
		Namespace: e.ns, SecretName: secretName, ServiceName: e.svc, WebhookConfigName: e.whc,
		CertDir:    e.t.TempDir(),
		CAValidity: 30 * 24 * time.Hour, CARenewBefore: 10 * 24 * time.Hour,
		CertValidity: 7 * 24 * time.Hour, RenewBefore: 2 * 24 * time.Hour,
		CAOverlap: time.Hour, CheckInterval: time.Hour,
		Now: e.clock.Now, Client: c, Logger: testLogger(e.t),
	}
}

// manager returns a Manager on c and its certificate directory.
func (e *env) manager(c client.Client) (*certs.Manager, string) {
	e.t.Helper()
	o := e.options(c)
	m, err := certs.New(o)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return m, o.CertDir
}

func (e *env) ensure(m *certs.Manager) {
	e.t.Helper()
	if err := m.Ensure(context.Background()); err != nil {
		e.t.Fatalf("Ensure: %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("AUTHGATE_TEST_VERBOSE") != "" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	_ = t
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

func (e *env) secret() *corev1.Secret {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: secretName}, s); err != nil {
		e.t.Fatalf("get secret: %v", err)
	}
	return s
}

func (e *env) webhooks() *admissionregistrationv1.MutatingWebhookConfiguration {
	e.t.Helper()
	w := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: e.whc}, w); err != nil {
		e.t.Fatalf("get webhook configuration: %v", err)
	}
	return w
}

// dnsNames are the names the serving certificate must be valid for.
func (e *env) dnsNames() []string {
	s := e.svc
	return []string{s, s + "." + e.ns, s + "." + e.ns + ".svc", s + "." + e.ns + ".svc.cluster.local"}
}

// state is the Secret as the tests see it.
type state struct {
	cas  []*x509.Certificate
	leaf *x509.Certificate
	data map[string][]byte
}

func (e *env) state() state {
	e.t.Helper()
	s := e.secret()
	cas := mustCerts(e.t, s.Data[certs.KeyCACert])
	leaf := mustCerts(e.t, s.Data[certs.KeyTLSCert])
	if len(cas) == 0 || len(leaf) != 1 {
		e.t.Fatalf("secret holds %d CAs and %d serving certificates", len(cas), len(leaf))
	}
	return state{cas: cas, leaf: leaf[0], data: s.Data}
}

// check asserts the invariants after a successful Ensure: the serving
// certificate verifies against ca.crt for every DNS name at the clock's
// time, it is signed by want (when not nil), the files equal the Secret,
// and both webhooks' caBundle equal ca.crt.
func (e *env) check(m *certs.Manager, dir string, signer *x509.Certificate) state {
	e.t.Helper()
	st := e.state()
	pool := x509.NewCertPool()
	for _, c := range st.cas {
		pool.AddCert(c)
	}
	for _, n := range e.dnsNames() {
		if _, err := st.leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: n, CurrentTime: e.clock.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			e.t.Errorf("serving certificate for %s: %v", n, err)
		}
	}
	if signer != nil {
		if err := st.leaf.CheckSignatureFrom(signer); err != nil {
			e.t.Errorf("serving certificate not signed by %s: %v", signer.Subject.CommonName, err)
		}
	}
	for _, k := range []string{certs.KeyCACert, certs.KeyTLSCert, certs.KeyTLSKey} {
		got, err := os.ReadFile(filepath.Join(dir, k))
		if err != nil {
			e.t.Fatalf("read %s: %v", k, err)
		}
		if !bytes.Equal(got, st.data[k]) {
			e.t.Errorf("file %s differs from the secret", k)
		}
	}
	for _, w := range e.webhooks().Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, st.data[certs.KeyCACert]) {
			e.t.Errorf("webhook %s caBundle: got %d bytes, want ca.crt (%d bytes)", w.Name, len(w.ClientConfig.CABundle), len(st.data[certs.KeyCACert]))
		}
	}
	if m != nil {
		cert, err := m.GetCertificate(nil)
		if err != nil {
			e.t.Fatalf("GetCertificate: %v", err)
		}
		if !bytes.Equal(cert.Certificate[0], st.leaf.Raw) {
			e.t.Error("GetCertificate serves another certificate than the secret's")
		}
	}
	return st
}

func mustCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("parse certificate: %v", err)
		}
		out = append(out, c)
	}
	return out
}

func names(cas []*x509.Certificate) string {
	var s []string
	for _, c := range cas {
		s = append(s, c.Subject.CommonName)
	}
	return strings.Join(s, ",")
}
