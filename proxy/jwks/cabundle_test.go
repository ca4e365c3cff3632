package jwks

import (
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/testca"
)

// roundTripFunc is an http.RoundTripper that is not an *http.Transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An issuer's CA bundle replaces the system roots for its fetches: keys
// come from an https IdP whose certificate only that CA signed, and
// nothing else (the system roots, another CA) is trusted for it.
func TestCABundleVerifiesTheIssuersCertificate(t *testing.T) {
	t.Parallel()
	ca, other := testca.New(t), testca.New(t)
	idp := faultidp.NewTLS(t, ca)
	sharedClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}} // like authgate-proxy's
	tests := []struct {
		name     string
		bundle   string
		client   *http.Client
		discover bool
		wantErr  func(error) bool // nil: keys are fetched
	}{
		{name: "jwksURL, the IdP's CA", bundle: ca.PEM},
		{name: "discovery, the IdP's CA", bundle: ca.PEM, discover: true},
		{name: "a shared base client, the IdP's CA", bundle: ca.PEM, client: sharedClient},
		{name: "a base client without transport, the IdP's CA", bundle: ca.PEM, client: &http.Client{}},
		{name: "system roots", wantErr: isUnknownAuthority},
		{name: "discovery, system roots", discover: true, wantErr: isUnknownAuthority},
		{name: "a shared base client, system roots", client: sharedClient, wantErr: isUnknownAuthority},
		{name: "another CA", bundle: other.PEM, wantErr: isUnknownAuthority},
		{name: "discovery, another CA", bundle: other.PEM, discover: true, wantErr: isUnknownAuthority},
		{name: "the IdP's CA among others", bundle: other.PEM + ca.PEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iss := issuerConfig(idp.URL, func(i *config.Issuer) {
				i.CABundle = tt.bundle
				if tt.discover {
					useDiscovery(i)
				}
			})
			ks, err := New(Options{Issuer: iss, HTTPClient: tt.client, Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("new key set: %v", err)
			}
			err = ks.Refresh(t.Context())
			if tt.wantErr == nil {
				if err != nil || ks.Status().Keys == 0 {
					t.Fatalf("got error %v and %d keys, want keys fetched", err, ks.Status().Keys)
				}
				return
			}
			if err == nil || !tt.wantErr(err) {
				t.Fatalf("got error %v, want a certificate verification error", err)
			}
			if ks.Status().Keys != 0 {
				t.Fatalf("got %d keys, want none", ks.Status().Keys)
			}
		})
	}
	// The shared client itself is left as it was: it still trusts the
	// system roots only.
	if tr := sharedClient.Transport.(*http.Transport); tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil {
		t.Fatal("the base client's transport was given the CA bundle, want it unchanged")
	}
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func TestCABundleRefusals(t *testing.T) {
	t.Parallel()
	ca := testca.New(t)
	tests := []struct {
		name    string
		bundle  string
		client  *http.Client
		wantErr string
	}{
		{"no certificate", "not a certificate", nil, "holds no PEM CERTIFICATE block"},
		{"a transport the bundle cannot apply to", ca.PEM, &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("must not be called")
		})}, "needs an *http.Transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iss := issuerConfig("https://idp.example.com", func(i *config.Issuer) { i.CABundle = tt.bundle })
			ks, err := New(Options{Issuer: iss, HTTPClient: tt.client, Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got key set %v, error %v; want an error containing %q", ks != nil, err, tt.wantErr)
			}
		})
	}
}
