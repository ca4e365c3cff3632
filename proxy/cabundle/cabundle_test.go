package cabundle_test

import (
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/cabundle"
	"github.com/authgate/authgate/test/testca"
)

// serverPEM returns the certificate of a new CA.
func serverPEM(t *testing.T) string {
	t.Helper()
	return testca.New(t).PEM
}

func TestParse(t *testing.T) {
	t.Parallel()
	a, b := serverPEM(t), serverPEM(t)
	tests := []struct {
		name      string
		in        string
		wantCount int
		wantPEM   string
		wantErr   string
	}{
		{"one certificate", a, 1, a, ""},
		{"two certificates", a + b, 2, a + b, ""},
		{"comments and blank lines dropped", "# cluster CA\n\n" + a + "\ntrailing text\n", 1, a, ""},
		{"CRLF line endings", strings.ReplaceAll(a, "\n", "\r\n"), 1, a, ""},
		{"other block types skipped", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})) + a, 1, a, ""},
		{"empty", "", 0, "", "holds no PEM CERTIFICATE block"},
		{"garbage", "not a certificate at all", 0, "", "holds no PEM CERTIFICATE block"},
		{"only a key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("k")})), 0, "", "holds no PEM CERTIFICATE block"},
		{"invalid certificate block", a + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), 0, "", "certificate 2 is not a valid X.509 certificate"},
		{"too large", strings.Repeat("x", cabundle.MaxBytes+1), 0, "", "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cabundle.Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "BEGIN") {
					t.Fatalf("error quotes the bundle: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got.Count != tt.wantCount || got.PEM != tt.wantPEM {
				t.Fatalf("got %d certificates, PEM %q; want %d, %q", got.Count, got.PEM, tt.wantCount, tt.wantPEM)
			}
		})
	}
}

func TestParseNoCertificateIsErrNoCertificate(t *testing.T) {
	t.Parallel()
	if _, err := cabundle.Parse("nothing"); !errors.Is(err, cabundle.ErrNoCertificate) {
		t.Fatalf("got %v, want ErrNoCertificate", err)
	}
}

func TestDigestIgnoresFormatting(t *testing.T) {
	t.Parallel()
	a, b := serverPEM(t), serverPEM(t)
	plain, _ := cabundle.Parse(a)
	commented, _ := cabundle.Parse("# comment\r\n" + strings.ReplaceAll(a, "\n", "\r\n"))
	other, _ := cabundle.Parse(b)
	if cabundle.Digest(plain.PEM) != cabundle.Digest(commented.PEM) {
		t.Fatalf("got digests %s and %s for the same certificate, want equal", cabundle.Digest(plain.PEM), cabundle.Digest(commented.PEM))
	}
	if cabundle.Digest(plain.PEM) == cabundle.Digest(other.PEM) {
		t.Fatal("got equal digests for different certificates, want different")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testca.New(f).PEM)
	f.Add("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	f.Fuzz(func(t *testing.T, in string) {
		b, err := cabundle.Parse(in)
		if err != nil {
			return
		}
		// What is accepted parses again to the same bundle.
		again, err := cabundle.Parse(b.PEM)
		if err != nil || again.PEM != b.PEM || again.Count != b.Count || b.Count == 0 {
			t.Fatalf("normalized bundle does not round-trip: %v", err)
		}
	})
}
