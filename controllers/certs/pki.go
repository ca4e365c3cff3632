package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"
)

// Keys of the Secret and names of the files in CertDir.
const (
	KeyCACert  = "ca.crt"
	KeyCAKey   = "ca.key"
	KeyTLSCert = "tls.crt"
	KeyTLSKey  = "tls.key"
)

// backdate moves NotBefore into the past so API servers whose clock is a
// little behind accept a certificate at once.
const backdate = 5 * time.Minute

// material is the parsed content of the Secret.
type material struct {
	cas     []*x509.Certificate // every trusted CA, newest first; cas[0] signs
	caKey   *ecdsa.PrivateKey   // cas[0]'s key
	leaf    *x509.Certificate   // the serving certificate (nil: none usable)
	leafKey *ecdsa.PrivateKey
}

// caBundle is the PEM of every trusted CA, newest first: ca.crt and
// every webhook's caBundle.
func (m *material) caBundle() []byte {
	var b bytes.Buffer
	for _, c := range m.cas {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// encode renders the Secret's data.
func (m *material) encode() (map[string][]byte, error) {
	caKey, err := encodeKey(m.caKey)
	if err != nil {
		return nil, err
	}
	leafKey, err := encodeKey(m.leafKey)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		KeyCACert:  m.caBundle(),
		KeyCAKey:   caKey,
		KeyTLSCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.leaf.Raw}),
		KeyTLSKey:  leafKey,
	}, nil
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// decode parses the Secret's data. A CA part that does not parse, or
// whose key does not match the newest CA, yields an error (start over); a
// serving pair that does not parse yields material without a leaf.
func decode(data map[string][]byte) (*material, error) {
	cas, err := parseCerts(data[KeyCACert])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCACert, err)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("%s: no certificate", KeyCACert)
	}
	for _, c := range cas {
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("%s: %q is not a CA", KeyCACert, c.Subject.CommonName)
		}
	}
	sortNewestFirst(cas)
	caKey, err := parseKey(data[KeyCAKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCAKey, err)
	}
	if !caKey.PublicKey.Equal(cas[0].PublicKey) {
		return nil, fmt.Errorf("%s does not match the newest CA", KeyCAKey)
	}
	m := &material{cas: cas, caKey: caKey}
	m.leaf, m.leafKey = decodeLeaf(data) // unusable: nil, re-issued by plan
	return m, nil
}

// decodeLeaf returns the serving pair, or nils if it is unusable.
func decodeLeaf(data map[string][]byte) (*x509.Certificate, *ecdsa.PrivateKey) {
	if _, err := tls.X509KeyPair(data[KeyTLSCert], data[KeyTLSKey]); err != nil {
		return nil, nil
	}
	leaf, err := parseCerts(data[KeyTLSCert])
	if err != nil || len(leaf) == 0 {
		return nil, nil
	}
	key, err := parseKey(data[KeyTLSKey])
	if err != nil {
		return nil, nil
	}
	return leaf[0], key
}

// parseCerts parses every CERTIFICATE block; anything else is an error.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return nil, errors.New("trailing data after PEM blocks")
	}
	return certs, nil
}

// parseKey parses one PKCS#8 ECDSA private key.
func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	return ec, nil
}

// sortNewestFirst orders CAs by NotBefore, newest first (ties: serial),
// so every replica renders the same caBundle.
func sortNewestFirst(cas []*x509.Certificate) {
	slices.SortStableFunc(cas, func(a, b *x509.Certificate) int {
		if c := b.NotBefore.Compare(a.NotBefore); c != 0 {
			return c
		}
		return b.SerialNumber.Cmp(a.SerialNumber)
	})
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}

// newCA creates a self-signed ECDSA P-256 CA valid from now for validity.
func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "authgate-webhook-ca@" + strconv.FormatInt(now.Unix(), 10)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return c, key, nil
}

// newLeaf issues a serving certificate for dnsNames signed by ca, valid
// from now for validity but never past the CA.
func newLeaf(now time.Time, validity time.Duration, dnsNames []string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate serving key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: dnsNames[len(dnsNames)-2]},
		DNSNames:              slices.Clone(dnsNames),
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create serving certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse serving certificate: %w", err)
	}
	return c, key, nil
}

// verifies reports whether leaf chains to one of cas at now for every
// name, for server authentication.
func verifies(leaf *x509.Certificate, cas []*x509.Certificate, names []string, now time.Time) error {
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots: pool, DNSName: n, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return fmt.Errorf("verify for %s: %w", n, err)
		}
	}
	return nil
}
