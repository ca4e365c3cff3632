package certs_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/test/wait"
)

// The rotator fills the empty Secret, publishes the CA in both webhooks'
// caBundle, and only once tls.crt is in the cert dir does the webhook get
// registered (and the server started) and readyz pass; then the real API
// server calls the webhook over TLS, failing closed otherwise.
func TestIssuesPublishesThenServes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.kubelet.pause(true) // the volume stays empty for now
	start := time.Now()
	e.start()
	p := e.issued()
	for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key"} {
		if len(p.data[k]) == 0 {
			t.Errorf("secret lacks %s", k)
		}
	}
	if err := p.leaf.CheckSignatureFrom(p.ca); err != nil {
		t.Errorf("serving certificate not signed by the CA: %v", err)
	}
	near := func(name string, got, want time.Time) {
		if got.Before(want.Add(-time.Minute)) || got.After(want.Add(time.Minute)) {
			t.Errorf("%s NotAfter %s, want about %s", name, got, want)
		}
	}
	near("CA", p.ca.NotAfter, start.Add(30*day))
	near("serving certificate", p.leaf.NotAfter, start.Add(7*day))
	wait.ForNil(t, 30*time.Second, func() error { return e.caBundlesAre(p.data["ca.crt"]) }, "caBundle published")

	// Published, but not in the cert dir: not served, not ready. Whenever
	// the webhook gets registered, start records whether tls.crt was in
	// the cert dir at that instant (checked below): that covers the whole
	// time the volume stays empty, with no wait to guess.
	select {
	case <-e.served:
		t.Fatalf("webhook registered before tls.crt was in the cert dir (%v)", e.certAtServe)
	default:
	}
	wait.ForNil(t, 10*time.Second, func() error {
		code, err := e.readyz()
		if err != nil {
			return err
		}
		if code == http.StatusOK {
			t.Fatal("readyz webhook-certs passes before tls.crt is in the cert dir")
		}
		return nil
	}, "readyz answers")

	e.kubelet.pause(false)
	e.waitServed()
	if e.certAtServe != nil {
		t.Fatalf("webhook registered before tls.crt was in the cert dir: %v", e.certAtServe)
	}
	if code, err := e.readyz(); err != nil || code != http.StatusOK {
		t.Errorf("readyz webhook-certs after serving: %d, %v", code, err)
	}
	wait.ForNil(t, 30*time.Second, e.admit, "the API server calls the webhook")
	served, err := e.servedLeaf(p.data["ca.crt"])
	if err != nil {
		t.Fatalf("TLS to the webhook server with the published CA: %v", err)
	}
	if !served.Equal(p.leaf) {
		t.Error("the webhook server presents another certificate than the Secret's")
	}
}

// A serving certificate close to its end (written into the Secret, as if
// time had passed) is renewed from the same CA, reaches the server, and
// every API server call meanwhile succeeds on the first try.
func TestRenewalKeepsTheWebhookCallable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serving()
	p := e.issued()
	names := e.dnsNames()
	issuer := &rotator.CertRotator{DNSName: names[0], ExtraDNSNames: names[1:], ExtKeyUsages: &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	now := time.Now()
	shortCrt, shortKey, err := issuer.CreateCertPEM(caArtifacts(t, p.data), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.updateSecret(func(d map[string][]byte) { d["tls.crt"], d["tls.key"] = shortCrt, shortKey })

	var renewed *x509.Certificate
	wait.ForNil(t, 60*time.Second, func() error {
		if err := e.admit(); err != nil {
			t.Fatalf("during renewal: %v", err)
		}
		d := e.secret().Data
		if bytes.Equal(d["tls.crt"], shortCrt) || bytes.Equal(d["tls.crt"], p.data["tls.crt"]) {
			return errors.New("not renewed in the Secret yet")
		}
		leaf := mustCert(t, d["tls.crt"])
		served, err := e.servedLeaf(p.data["ca.crt"])
		if err != nil {
			return err
		}
		if !served.Equal(leaf) {
			return errors.New("the webhook server still presents the old certificate")
		}
		renewed = leaf
		return nil
	}, "the renewed certificate to be served after the short one was written")
	if got := e.secret().Data["ca.crt"]; !bytes.Equal(got, p.data["ca.crt"]) {
		t.Error("renewing the serving certificate replaced the CA")
	}
	if err := e.caBundlesAre(p.data["ca.crt"]); err != nil {
		t.Error(err)
	}
	if err := renewed.CheckSignatureFrom(p.ca); err != nil {
		t.Errorf("renewed certificate not signed by the CA: %v", err)
	}
	if min := now.Add(7*day - time.Hour); renewed.NotAfter.Before(min) {
		t.Errorf("renewed certificate ends %s, want after %s", renewed.NotAfter, min)
	}
	for i := range 3 {
		if err := e.admit(); err != nil {
			t.Fatalf("call %d after renewal: %v", i, err)
		}
	}
}

// A CA close to its end is replaced at once, with the serving
// certificate, and the caBundle then holds the new CA only: there is no
// overlap. Until the pod's volume brings the new serving certificate, the
// API server refuses the one still served (the gap documented in
// docs/webhook-certificates.md); afterwards it calls the webhook again.
func TestCARotationHasNoOverlap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serving()
	p := e.issued()
	e.kubelet.pause(true) // the kubelet has not synced the volume yet
	now := time.Now()
	expiring, err := (&rotator.CertRotator{CAName: "authgate-webhook-ca", CAOrganization: "authgate"}).CreateCACert(now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.updateSecret(func(d map[string][]byte) { d["ca.crt"], d["ca.key"] = expiring.CertPEM, expiring.KeyPEM })

	var next []byte
	wait.ForNil(t, 30*time.Second, func() error {
		d := e.secret().Data
		if bytes.Equal(d["ca.crt"], p.data["ca.crt"]) || bytes.Equal(d["ca.crt"], expiring.CertPEM) {
			return errors.New("CA not replaced yet")
		}
		next = d["ca.crt"]
		return e.caBundlesAre(next)
	}, "a new CA is published")
	if n := countCerts(next); n != 1 {
		t.Errorf("caBundle holds %d certificates, want 1 (cert-controller keeps no old CA)", n)
	}

	wait.ForNil(t, 30*time.Second, func() error {
		err := e.admit()
		if err == nil {
			return errors.New("still accepted")
		}
		if !strings.Contains(err.Error(), "x509") {
			return fmt.Errorf("refused for another reason: %w", err)
		}
		return nil
	}, "the API server refuses the certificate still served")

	e.kubelet.pause(false)
	wait.ForNil(t, 60*time.Second, e.admit, "the API server calls the webhook with the new certificate")
	served, err := e.servedLeaf(next)
	if err != nil {
		t.Fatalf("TLS with the new CA: %v", err)
	}
	if !served.Equal(mustCert(t, e.secret().Data["tls.crt"])) {
		t.Error("the webhook server presents another certificate than the Secret's")
	}
}

// The rotator's user may list Secrets only by name: the other tests
// passing as that user prove the rotator's cache asks for the one Secret.
func TestRotatorUserListsOnlyByName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := client.New(e.user.Config(), client.Options{Scheme: testEnv.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = c.List(ctx, &corev1.SecretList{}, client.InNamespace(e.ns))
	if !apierrors.IsForbidden(err) {
		t.Errorf("list every Secret: got %v, want forbidden", err)
	}
	var list corev1.SecretList
	if err := c.List(ctx, &list, client.InNamespace(e.ns), client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", secretName)}); err != nil {
		t.Errorf("list the one Secret: %v", err)
	}
	if len(list.Items) != 1 {
		t.Errorf("listed %d Secrets, want 1", len(list.Items))
	}
}

func countCerts(b []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n
		}
		n++
	}
}
