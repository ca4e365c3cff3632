// Package certs keeps the TLS of the controller's admission webhook server
// when cert-manager does not: its own CA and serving certificate in a
// Secret shared by every replica, the serving pair in the webhook server's
// certificate directory (and in memory, see GetCertificate), and the CA in
// every webhook's caBundle of the MutatingWebhookConfiguration. It renews
// the serving certificate before it expires, and the CA too: a new CA is
// first published next to the old one and signs the serving certificate
// only CAOverlap later, once it was already in the caBundle, so API
// servers (and replicas still serving the previous certificate) never see
// a certificate they do not trust. Old CAs leave the bundle when they
// expire.
//
// Every replica runs a Manager (no leader election: each needs the
// files). They share the Secret with optimistic concurrency: a replica
// that loses a write reloads it and uses the winner's certificates.
//
// With cert-manager (the Helm chart's option) none of this runs.
package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// The Secret lives in the controller's namespace; the Role generated from
// this marker assumes the chart's default namespace (a chart installing
// elsewhere renders its own Role). The ClusterRole already grants get on
// secrets. The webhook configuration is read and written uncached, so
// neither list nor watch is needed.
//
// +kubebuilder:rbac:groups="",namespace=authgate-system,resources=secrets,verbs=get;create;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=get;update

// writeAttempts bounds how often Ensure reloads the Secret after losing a
// write to another replica.
const writeAttempts = 5

// maxBackoff bounds Start's retry delay after a failed Ensure.
const maxBackoff = 5 * time.Minute

// Manager issues, stores, renews and publishes the webhook certificates.
type Manager struct {
	o       Options
	mu      sync.Mutex // serialises Ensure
	serving atomic.Pointer[servingPair]
	ready   chan struct{}
	readyMu sync.Once
}

type servingPair struct {
	cert     *tls.Certificate
	notAfter time.Time
}

// New validates o (after defaults) and returns a Manager. It does no I/O.
func New(o Options) (*Manager, error) {
	o = o.withDefaults()
	err := o.validate()
	if o.Client == nil {
		err = errors.Join(err, errors.New("client is required"))
	}
	if err != nil {
		return nil, fmt.Errorf("webhook certificates: %w", err)
	}
	return &Manager{o: o, ready: make(chan struct{})}, nil
}

// NeedLeaderElection is false: every replica serves webhooks and needs the
// certificate.
func (m *Manager) NeedLeaderElection() bool { return false }

// Ready is closed after the first successful Ensure.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// GetCertificate serves the current certificate from memory, for
// tls.Config.GetCertificate (webhook.Options.TLSOpts). Before the first
// successful Ensure it fails the handshake.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	p := m.serving.Load()
	if p == nil {
		return nil, errors.New("webhook serving certificate not issued yet")
	}
	return p.cert, nil
}

// ReadyzCheck fails until the first successful Ensure, and again if the
// certificate in use has expired (Ensure failing for a long time).
func ReadyzCheck(m *Manager) healthz.Checker {
	return func(*http.Request) error {
		select {
		case <-m.ready:
		default:
			return errors.New("webhook certificate not ensured yet")
		}
		if p := m.serving.Load(); p != nil && !m.o.Now().Before(p.notAfter) {
			return fmt.Errorf("webhook certificate expired at %s", p.notAfter.UTC().Format(time.RFC3339))
		}
		return nil
	}
}

// Start runs Ensure at once, retrying with backoff until it succeeds, and
// then every CheckInterval (again with backoff after a failure) until ctx
// is done. It implements manager.Runnable.
func (m *Manager) Start(ctx context.Context) error {
	backoff := time.Second
	for {
		delay := m.o.CheckInterval
		if err := m.Ensure(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			delay = min(backoff, m.o.CheckInterval)
			backoff = min(2*backoff, maxBackoff)
			m.o.Logger.ErrorContext(ctx, "ensure webhook certificates", "error", err.Error(), "retry_in", delay.String())
		} else {
			backoff = time.Second
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Ensure loads the Secret (creating it if missing), issues or renews what
// is due (see plan), writes the files that changed and patches the caBundles
// that differ. Nothing is written when nothing changed.
func (m *Manager) Ensure(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	whc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := m.o.APIReader.Get(ctx, types.NamespacedName{Name: m.o.WebhookConfigName}, whc); err != nil {
		return fmt.Errorf("get mutatingwebhookconfiguration %s: %w", m.o.WebhookConfigName, err)
	}
	mat, err := m.ensureSecret(ctx, now, publishedIn(whc))
	if err != nil {
		return err
	}
	pair, err := m.writeFiles(mat)
	if err != nil {
		return err
	}
	m.serving.Store(&servingPair{cert: pair, notAfter: mat.leaf.NotAfter})
	if err := m.publish(ctx, whc, mat.caBundle()); err != nil {
		return err
	}
	m.readyMu.Do(func() { close(m.ready) })
	return nil
}

// publishedIn returns whether a CA is in every webhook's caBundle.
func publishedIn(whc *admissionregistrationv1.MutatingWebhookConfiguration) func(*x509.Certificate) bool {
	return func(ca *x509.Certificate) bool {
		if len(whc.Webhooks) == 0 {
			return false
		}
		for _, w := range whc.Webhooks {
			certs, _ := parseCerts(w.ClientConfig.CABundle)
			found := false
			for _, c := range certs {
				if c.Equal(ca) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
}

// ensureSecret returns the material now in force, writing the Secret if
// the plan changed it. Losing a write to another replica reloads the
// Secret and plans again, which then keeps the winner's certificates.
func (m *Manager) ensureSecret(ctx context.Context, now time.Time, trusted func(*x509.Certificate) bool) (*material, error) {
	key := types.NamespacedName{Namespace: m.o.Namespace, Name: m.o.SecretName}
	for range writeAttempts {
		sec := &corev1.Secret{}
		err := m.o.APIReader.Get(ctx, key, sec)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get secret %s: %w", key, err)
		}
		var cur *material
		if exists {
			if cur, err = decode(sec.Data); err != nil {
				m.o.Logger.WarnContext(ctx, "webhook TLS secret unusable, issuing a new CA", "secret", key.String(), "error", err.Error())
			}
		}
		next, reasons, err := m.plan(cur, trusted, now)
		if err != nil {
			return nil, err
		}
		if len(reasons) == 0 {
			return next, nil
		}
		data, err := next.encode()
		if err != nil {
			return nil, err
		}
		if exists {
			if sec.Data == nil {
				sec.Data = map[string][]byte{}
			}
			for k, v := range data {
				sec.Data[k] = v
			}
			err = m.o.Client.Update(ctx, sec)
		} else {
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: key.Namespace, Name: key.Name,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "authgate-controller"},
				},
				Type: corev1.SecretTypeTLS,
				Data: data,
			}
			err = m.o.Client.Create(ctx, sec)
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			continue // another replica wrote first: use its certificates
		}
		if err != nil {
			return nil, fmt.Errorf("write secret %s: %w", key, err)
		}
		m.o.Logger.InfoContext(ctx, "webhook certificates issued", "secret", key.String(), "reasons", reasons,
			"ca_serial", next.cas[0].SerialNumber.Text(16), "ca_not_after", next.cas[0].NotAfter,
			"cas_trusted", len(next.cas), "cert_serial", next.leaf.SerialNumber.Text(16), "cert_not_after", next.leaf.NotAfter)
		return next, nil
	}
	return nil, fmt.Errorf("secret %s: still changing after %d attempts", key, writeAttempts)
}

// writeFiles writes ca.crt, tls.key and tls.crt into CertDir where they
// differ (each atomically: temporary file, then rename; the key first, so a
// reader that sees the new certificate finds its key) and returns the pair.
func (m *Manager) writeFiles(mat *material) (*tls.Certificate, error) {
	data, err := mat.encode()
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(data[KeyTLSCert], data[KeyTLSKey])
	if err != nil {
		return nil, fmt.Errorf("serving pair: %w", err)
	}
	if err := os.MkdirAll(m.o.CertDir, 0o700); err != nil {
		return nil, fmt.Errorf("cert dir: %w", err)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{KeyCACert, 0o644}, {KeyTLSKey, 0o600}, {KeyTLSCert, 0o644}} {
		if err := writeIfChanged(filepath.Join(m.o.CertDir, f.name), data[f.name], f.mode); err != nil {
			return nil, err
		}
	}
	return &pair, nil
}

func writeIfChanged(path string, content []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // fails harmlessly after the rename
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// publish sets every webhook's caBundle to bundle, updating the
// configuration only if one differs (re-reading it on conflict).
func (m *Manager) publish(ctx context.Context, whc *admissionregistrationv1.MutatingWebhookConfiguration, bundle []byte) error {
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			if err := m.o.APIReader.Get(ctx, types.NamespacedName{Name: whc.Name}, whc); err != nil {
				return err
			}
		}
		first = false
		changed := false
		for i := range whc.Webhooks {
			if !bytes.Equal(whc.Webhooks[i].ClientConfig.CABundle, bundle) {
				whc.Webhooks[i].ClientConfig.CABundle = bundle
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if err := m.o.Client.Update(ctx, whc); err != nil {
			return err
		}
		m.o.Logger.InfoContext(ctx, "webhook caBundle published", "mutatingwebhookconfiguration", whc.Name, "webhooks", len(whc.Webhooks))
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish caBundle to mutatingwebhookconfiguration %s: %w", whc.Name, err)
	}
	return nil
}
