package certs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/controllers/certs"
)

const day = 24 * time.Hour

func TestEnsureIssuesOnFirstRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, dir := e.manager(k8s)
	select {
	case <-m.Ready():
		t.Fatal("ready before the first Ensure")
	default:
	}
	if err := certs.ReadyzCheck(m)(httptest.NewRequest("GET", "/readyz", nil)); err == nil {
		t.Error("readyz passes before the first Ensure")
	}
	if _, err := m.GetCertificate(nil); err == nil {
		t.Error("GetCertificate serves before the first Ensure")
	}
	e.ensure(m)
	st := e.check(m, dir, nil)
	if len(st.cas) != 1 {
		t.Fatalf("got %d CAs, want 1", len(st.cas))
	}
	ca, leaf := st.cas[0], st.leaf
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, basic constraints %v, key usage %v", ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("serving certificate not signed by the CA: %v", err)
	}
	if leaf.IsCA || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("serving certificate: IsCA %v, ext key usage %v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject.CommonName, c.PublicKey)
		}
	}
	if got, want := leaf.NotAfter, t0.Add(7*day); !got.Equal(want) {
		t.Errorf("serving certificate NotAfter %s, want %s", got, want)
	}
	if got, want := ca.NotAfter, t0.Add(30*day); !got.Equal(want) {
		t.Errorf("CA NotAfter %s, want %s", got, want)
	}
	if got := e.secret().Type; got != corev1.SecretTypeTLS {
		t.Errorf("secret type %q, want %q", got, corev1.SecretTypeTLS)
	}
	if _, ok := st.data[certs.KeyCAKey]; !ok {
		t.Error("secret has no ca.key")
	}
	if info, err := os.Stat(filepath.Join(dir, certs.KeyTLSKey)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("tls.key: %v, mode %v, want 0600", err, info.Mode().Perm())
	}
	select {
	case <-m.Ready():
	default:
		t.Error("not ready after Ensure")
	}
	if err := certs.ReadyzCheck(m)(httptest.NewRequest("GET", "/readyz", nil)); err != nil {
		t.Errorf("readyz: %v", err)
	}
}

// Another replica (or a restart) loads the Secret and writes nothing: the
// Secret's and the webhook configuration's resourceVersions stay put.
func TestEnsureReloadsWithoutReissuing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m1, dir1 := e.manager(k8s)
	e.ensure(m1)
	before := e.check(m1, dir1, nil)
	secRV, whcRV := e.secret().ResourceVersion, e.webhooks().ResourceVersion

	e.clock.Advance(3 * day)
	m2, dir2 := e.manager(k8s)
	e.ensure(m2)
	e.ensure(m1)
	after := e.check(m2, dir2, nil)
	if !bytes.Equal(before.data[certs.KeyTLSCert], after.data[certs.KeyTLSCert]) || !bytes.Equal(before.data[certs.KeyCACert], after.data[certs.KeyCACert]) {
		t.Error("certificates re-issued although none was due")
	}
	if got := e.secret().ResourceVersion; got != secRV {
		t.Errorf("secret resourceVersion %s, want %s (unchanged)", got, secRV)
	}
	if got := e.webhooks().ResourceVersion; got != whcRV {
		t.Errorf("webhook configuration resourceVersion %s, want %s (unchanged)", got, whcRV)
	}
}

func TestEnsureRenewsServingCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, dir := e.manager(k8s)
	e.ensure(m)
	first := e.check(m, dir, nil)
	whcRV := e.webhooks().ResourceVersion

	e.clock.Advance(5*day - time.Minute) // 2d+1m left: not due
	e.ensure(m)
	if st := e.state(); !bytes.Equal(st.data[certs.KeyTLSCert], first.data[certs.KeyTLSCert]) {
		t.Fatal("serving certificate renewed before RenewBefore")
	}
	e.clock.Advance(2 * time.Minute) // 2d-1m left: due
	e.ensure(m)
	st := e.check(m, dir, first.cas[0])
	if bytes.Equal(st.data[certs.KeyTLSCert], first.data[certs.KeyTLSCert]) {
		t.Fatal("serving certificate not renewed within RenewBefore")
	}
	if !bytes.Equal(st.data[certs.KeyCACert], first.data[certs.KeyCACert]) {
		t.Error("CA changed on a serving certificate renewal")
	}
	if got, want := st.leaf.NotAfter, e.clock.Now().Add(7*day); !got.Equal(want) {
		t.Errorf("renewed NotAfter %s, want %s", got, want)
	}
	if got := e.webhooks().ResourceVersion; got != whcRV {
		t.Errorf("webhook configuration updated (resourceVersion %s, was %s) although the CA did not change", got, whcRV)
	}
}

// The CA rotates with an overlap: the new CA is published next to the old
// one, the serving certificate moves to it only CAOverlap later and only
// once every webhook already trusted it, and the old CA leaves the bundle
// when it expires.
func TestEnsureRotatesCA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, dir := e.manager(k8s)
	e.ensure(m)
	ca1 := e.check(m, dir, nil).cas[0]

	// Just before the CA is due (10d+1h left): the expired serving
	// certificate is renewed, by the old CA.
	e.clock.Advance(20*day - time.Hour)
	e.ensure(m)
	e.check(m, dir, ca1)

	// The CA is due: a new CA is trusted next to the old one; the serving
	// certificate (still fresh) stays signed by the old CA.
	e.clock.Advance(2 * time.Hour)
	e.ensure(m)
	st := e.check(m, dir, ca1)
	if len(st.cas) != 2 || !st.cas[1].Equal(ca1) {
		t.Fatalf("trusted CAs %s, want a new one then %s", names(st.cas), ca1.Subject.CommonName)
	}
	ca2 := st.cas[0]
	if got, want := ca2.NotAfter, e.clock.Now().Add(30*day); !got.Equal(want) {
		t.Errorf("new CA NotAfter %s, want %s", got, want)
	}

	// Within the overlap nothing changes.
	e.clock.Advance(30 * time.Minute)
	e.ensure(m)
	e.check(m, dir, ca1)

	// After the overlap, but a stale writer had put the old bundle back:
	// publish again, keep the old signer this round.
	whc := e.webhooks()
	for i := range whc.Webhooks {
		whc.Webhooks[i].ClientConfig.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca1.Raw})
	}
	if err := k8s.Update(context.Background(), whc); err != nil {
		t.Fatalf("reset caBundle: %v", err)
	}
	e.clock.Advance(time.Hour)
	e.ensure(m)
	e.check(m, dir, ca1)

	// Published at the start of the round and old enough: the serving
	// certificate moves to the new CA; the bundle is unchanged.
	whcRV := e.webhooks().ResourceVersion
	e.ensure(m)
	st = e.check(m, dir, ca2)
	if len(st.cas) != 2 {
		t.Errorf("trusted CAs %s, want both until the old one expires", names(st.cas))
	}
	if got := e.webhooks().ResourceVersion; got != whcRV {
		t.Errorf("webhook configuration updated when only the serving certificate changed")
	}

	// The old CA has expired: it leaves the bundle.
	e.clock.Advance(ca1.NotAfter.Sub(e.clock.Now()) + time.Minute)
	e.ensure(m)
	st = e.check(m, dir, ca2)
	if len(st.cas) != 1 || !st.cas[0].Equal(ca2) {
		t.Errorf("trusted CAs %s, want only %s", names(st.cas), ca2.Subject.CommonName)
	}
}

func TestEnsureReplacesCorruptedSecret(t *testing.T) {
	t.Parallel()
	otherKey := func(t *testing.T) []byte {
		// a valid key of another CA: take it from a second namespace's Secret
		o := newEnv(t)
		m, _ := o.manager(k8s)
		o.ensure(m)
		return o.secret().Data[certs.KeyCAKey]
	}
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, data map[string][]byte)
		newCA   bool
	}{
		{"ca.crt garbage", func(_ *testing.T, d map[string][]byte) { d[certs.KeyCACert] = []byte("not a certificate") }, true},
		{"ca.crt missing", func(_ *testing.T, d map[string][]byte) { delete(d, certs.KeyCACert) }, true},
		{"ca.crt is the serving certificate", func(_ *testing.T, d map[string][]byte) { d[certs.KeyCACert] = d[certs.KeyTLSCert] }, true},
		{"ca.key of another CA", func(t *testing.T, d map[string][]byte) { d[certs.KeyCAKey] = otherKey(t) }, true},
		{"tls.key garbage", func(_ *testing.T, d map[string][]byte) {
			d[certs.KeyTLSKey] = []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}, false},
		{"tls.crt empty", func(_ *testing.T, d map[string][]byte) { d[certs.KeyTLSCert] = []byte{} }, false},
		{"tls.key of the CA", func(_ *testing.T, d map[string][]byte) { d[certs.KeyTLSKey] = d[certs.KeyCAKey] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			m, dir := e.manager(k8s)
			e.ensure(m)
			before := e.state()
			sec := e.secret()
			tc.corrupt(t, sec.Data)
			if err := k8s.Update(context.Background(), sec); err != nil {
				t.Fatalf("corrupt secret: %v", err)
			}
			e.ensure(m)
			st := e.check(m, dir, nil)
			if bytes.Equal(st.data[certs.KeyTLSCert], before.data[certs.KeyTLSCert]) {
				t.Error("serving certificate not re-issued")
			}
			if gotNew := !st.cas[0].Equal(before.cas[0]); gotNew != tc.newCA {
				t.Errorf("new CA: got %v, want %v", gotNew, tc.newCA)
			}
		})
	}
}

func TestEnsureFailsWithoutWebhookConfiguration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.options(k8s)
	o.WebhookConfigName = "authgate-missing-" + e.ns
	m, err := certs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(context.Background()); err == nil {
		t.Fatal("Ensure succeeded without the webhook configuration")
	}
	select {
	case <-m.Ready():
		t.Error("ready after a failed Ensure")
	default:
	}
}

func TestEnsureKeepsTheSecretsOtherKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec := &corev1.Secret{}
	sec.Namespace, sec.Name = e.ns, secretName
	sec.Data = map[string][]byte{"extra": []byte("kept")}
	if err := k8s.Create(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	m, dir := e.manager(k8s)
	e.ensure(m)
	e.check(m, dir, nil)
	got := e.secret()
	if string(got.Data["extra"]) != "kept" {
		t.Errorf("extra key: got %q, want %q", got.Data["extra"], "kept")
	}
}
