package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/authgate/authgate/controllers/certs"
	"github.com/authgate/authgate/test/wait"
)

const (
	secretName = "authgate-webhook-tls"
	// serviceName makes "localhost" one of the certificate's DNS names:
	// the API server calls the webhook at https://localhost:<port>.
	serviceName = "localhost"
	day         = 24 * time.Hour
)

// env is one test's world: the controller's namespace holding the empty
// Secret (as the chart ships it), a MutatingWebhookConfiguration with two
// webhooks (failurePolicy Fail) pointing at the webhook server, a
// namespace both webhooks select, a user holding only rotatorRules, and a
// stand-in for the kubelet copying the Secret into the cert dir.
type env struct {
	t       *testing.T
	ns      string // the controller's namespace
	target  string // a namespace both webhooks select
	whc     string
	port    int // the webhook server's
	probe   int // /readyz
	certDir string
	user    *envtest.AuthenticatedUser
	kubelet *kubelet
	calls   atomic.Int64  // admission requests served
	served  chan struct{} // closed when the webhook handler is registered
	// certAtServe is why tls.crt was not in the cert dir when the webhook
	// handler was registered (nil: it was); read it after served closed.
	certAtServe error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, port: freePort(t), probe: freePort(t), certDir: t.TempDir(), served: make(chan struct{})}
	e.ns = e.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "certs-"}}).GetName()
	e.whc = e.ns
	e.target = e.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "certs-target-", Labels: map[string]string{"authgate-test": e.whc},
	}}).GetName()
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: secretName}})
	e.create(webhookConfig(e.whc, fmt.Sprintf("https://localhost:%d/mutate", e.port)))
	e.user = e.rotatorUser()
	e.kubelet = &kubelet{key: types.NamespacedName{Namespace: e.ns, Name: secretName}, dir: e.certDir}
	return e
}

// create creates obj as the administrator and deletes it at the end.
func (e *env) create(obj client.Object) client.Object {
	e.t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		e.t.Fatalf("create %T: %v", obj, err)
	}
	e.t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	return obj
}

// rotatorRules are all the rotator may do: read and update the one
// Secret, read and update the one webhook configuration. Lists and
// watches are allowed by name only, so these rules also prove that the
// rotator's cache asks for nothing else. TestGeneratedRBACGrantsTheRotatorRules
// checks that config/rbac/role.yaml grants them.
func rotatorRules(secret, whc string) (namespaced, cluster []rbacv1.PolicyRule) {
	verbs := []string{"get", "list", "watch", "update"}
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: verbs}},
		[]rbacv1.PolicyRule{{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{whc}, Verbs: verbs}}
}

// addUserMu serialises envtest's AddUser: its certificate authority is not
// safe for concurrent use, and the tests of this package run in parallel.
var addUserMu sync.Mutex

// rotatorUser adds a user bound to rotatorRules.
func (e *env) rotatorUser() *envtest.AuthenticatedUser {
	e.t.Helper()
	name := "rotator-" + e.ns
	addUserMu.Lock()
	user, err := testEnv.AddUser(envtest.User{Name: name}, testEnv.Config)
	addUserMu.Unlock()
	if err != nil {
		e.t.Fatalf("add user: %v", err)
	}
	namespaced, cluster := rotatorRules(secretName, e.whc)
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	e.create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name}, Rules: namespaced})
	e.create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
	e.create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: cluster})
	e.create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})
	return user
}

// options are the controller's, with this test's names.
func (e *env) options() certs.Options {
	return certs.Options{
		Namespace: e.ns, SecretName: secretName, ServiceName: serviceName, WebhookConfigName: e.whc,
		CertDir: e.certDir, CAValidity: 30 * day, CertValidity: 7 * day, RenewBefore: 2 * day,
		ControllerName: "cert-rotator-" + e.ns, Logger: testLogger(),
	}
}

// start runs a manager as the rotator's user with certs.Add, whose
// whenReady registers a webhook that allows everything and counts calls,
// until the test ends.
func (e *env) start() {
	e.t.Helper()
	mgr, err := ctrl.NewManager(e.user.Config(), ctrl.Options{
		Scheme:                 testEnv.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "127.0.0.1:" + strconv.Itoa(e.probe),
		WebhookServer:          webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: e.port, CertDir: e.certDir}),
	})
	if err != nil {
		e.t.Fatalf("new manager: %v", err)
	}
	err = certs.Add(mgr, e.options(), func() error {
		mgr.GetWebhookServer().Register("/mutate", &admission.Webhook{Handler: admission.HandlerFunc(
			func(context.Context, admission.Request) admission.Response {
				e.calls.Add(1)
				return admission.Allowed("")
			})})
		_, e.certAtServe = os.Stat(filepath.Join(e.certDir, "tls.crt"))
		close(e.served)
		return nil
	})
	if err != nil {
		e.t.Fatalf("certs.Add: %v", err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	kubeletDone := make(chan struct{})
	go func() { defer close(kubeletDone); e.kubelet.run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		<-kubeletDone
		if err := <-done; err != nil {
			e.t.Errorf("manager: %v", err)
		}
	})
}

// serving starts the manager and waits until the webhook is served and
// the API server calls it.
func (e *env) serving() {
	e.t.Helper()
	e.start()
	e.waitServed()
	wait.ForNil(e.t, 30*time.Second, func() error { return e.admit() }, "the API server calls the webhook")
}

func (e *env) waitServed() {
	e.t.Helper()
	select {
	case <-e.served:
	case <-time.After(90 * time.Second):
		e.t.Fatal("webhook not served 90s after start")
	}
}

// admit creates a ConfigMap in the target namespace: both webhooks must
// have been called, with failurePolicy Fail.
func (e *env) admit() error {
	before := e.calls.Load()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.target, GenerateName: "c-"}}
	if err := k8s.Create(context.Background(), cm); err != nil {
		return fmt.Errorf("create configmap: %w", err)
	}
	if got := e.calls.Load() - before; got != 2 {
		return fmt.Errorf("webhook called %d times, want 2", got)
	}
	return nil
}

func (e *env) secret() *corev1.Secret {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: secretName}, s); err != nil {
		e.t.Fatalf("get secret: %v", err)
	}
	return s
}

// updateSecret changes the Secret's data as the administrator.
func (e *env) updateSecret(change func(map[string][]byte)) {
	e.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := e.secret()
		change(s.Data)
		return k8s.Update(context.Background(), s)
	})
	if err != nil {
		e.t.Fatalf("update secret: %v", err)
	}
}

func (e *env) webhooks() *admissionregistrationv1.MutatingWebhookConfiguration {
	e.t.Helper()
	w := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: e.whc}, w); err != nil {
		e.t.Fatalf("get webhook configuration: %v", err)
	}
	return w
}

// caBundlesAre fails unless every webhook's caBundle is want.
func (e *env) caBundlesAre(want []byte) error {
	for _, w := range e.webhooks().Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, want) {
			return fmt.Errorf("webhook %s: caBundle of %d bytes, want %d", w.Name, len(w.ClientConfig.CABundle), len(want))
		}
	}
	return nil
}

// dnsNames are the names the serving certificate must be valid for.
func (e *env) dnsNames() []string {
	s := serviceName
	return []string{s + "." + e.ns + ".svc", s, s + "." + e.ns, s + "." + e.ns + ".svc.cluster.local"}
}

// pki is the Secret as the tests see it.
type pki struct {
	ca   *x509.Certificate
	leaf *x509.Certificate
	data map[string][]byte
}

// issued returns the Secret once the rotator filled it, checking that the
// serving certificate verifies against ca.crt for every DNS name.
func (e *env) issued() pki {
	e.t.Helper()
	var p pki
	wait.ForNil(e.t, 30*time.Second, func() error {
		d := e.secret().Data
		if len(d["tls.crt"]) == 0 || len(d["ca.crt"]) == 0 {
			return fmt.Errorf("secret has keys %v", keys(d))
		}
		p = pki{ca: mustCert(e.t, d["ca.crt"]), leaf: mustCert(e.t, d["tls.crt"]), data: d}
		return nil
	}, "the rotator fills the Secret")
	if !p.ca.IsCA || p.ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		e.t.Errorf("ca.crt: IsCA %v, key usage %v", p.ca.IsCA, p.ca.KeyUsage)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	for _, n := range e.dnsNames() {
		if _, err := p.leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: n, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			e.t.Errorf("serving certificate for %s: %v", n, err)
		}
	}
	return p
}

// servedLeaf is the certificate the webhook server presents, verified
// against roots for "localhost".
func (e *env) servedLeaf(roots []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(roots) {
		return nil, fmt.Errorf("no CA in %d bytes", len(roots))
	}
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: serviceName, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(e.port))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// readyz returns the status of the manager's webhook-certs readyz check.
func (e *env) readyz() (int, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz/webhook-certs", e.probe)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// caArtifacts parses the CA out of the Secret as the rotator wrote it.
func caArtifacts(t *testing.T, data map[string][]byte) *rotator.KeyPairArtifacts {
	t.Helper()
	block, _ := pem.Decode(data["ca.key"])
	if block == nil {
		t.Fatal("ca.key: no PEM block")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("ca.key: %v", err)
	}
	return &rotator.KeyPairArtifacts{Cert: mustCert(t, data["ca.crt"]), Key: key, CertPEM: data["ca.crt"], KeyPEM: data["ca.key"]}
}

// webhookConfig has two webhooks for ConfigMaps created in namespaces
// labelled authgate-test=<name>, failing closed.
func webhookConfig(name, url string) *admissionregistrationv1.MutatingWebhookConfiguration {
	hook := func(n string) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    n + "." + name + ".authgate.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url)},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
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

// kubelet stands in for the kubelet's Secret volume: when tls.crt and
// tls.key of the Secret change it writes them into a new directory and
// swaps the symlink ..data to it, tls.crt and tls.key being links through
// ..data (the kubelet's atomic writer), unless paused.
type kubelet struct {
	key    types.NamespacedName
	dir    string
	mu     sync.Mutex
	paused bool
	last   []byte // tls.crt last written
	gen    int
}

func (k *kubelet) pause(p bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.paused = p
}

func (k *kubelet) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = k.sync(ctx)
		}
	}
}

func (k *kubelet) sync(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.paused {
		return nil
	}
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, k.key, s); err != nil {
		return err
	}
	crt, key := s.Data["tls.crt"], s.Data["tls.key"]
	if len(crt) == 0 || len(key) == 0 || bytes.Equal(crt, k.last) {
		return nil
	}
	k.gen++
	gen := fmt.Sprintf("..%d", k.gen)
	if err := os.Mkdir(filepath.Join(k.dir, gen), 0o700); err != nil {
		return err
	}
	for name, content := range map[string][]byte{"tls.crt": crt, "tls.key": key} {
		if err := os.WriteFile(filepath.Join(k.dir, gen, name), content, 0o600); err != nil {
			return err
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		return err
	}
	for _, name := range []string{"tls.crt", "tls.key"} {
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	k.last = crt
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func mustCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("no certificate in %d bytes", len(b))
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func testLogger() *slog.Logger {
	if os.Getenv("AUTHGATE_TEST_VERBOSE") != "" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}
