package jwks

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/metrics"
)

// FuzzVerifySignature feeds arbitrary tokens to an inline-only key set (no
// network): it must never panic, and every error must be one of the
// package's sentinels.
func FuzzVerifySignature(f *testing.F) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		f.Fatal(err)
	}
	iss.SetURL("https://idp.example.com")
	cfg := issuerConfig("https://idp.example.com", noRemote, inline(iss.PublicJWKS()))
	ks, err := New(Options{Issuer: cfg, Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	seed := func(opts ...devissuer.MintOption) string {
		tok, err := iss.Mint(map[string]any{"sub": "alice"}, opts...)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	good := seed()
	f.Add(good)
	f.Add(seed(devissuer.WithAlg("ES256")))
	f.Add(seed(devissuer.WithoutKID()))
	f.Add(seed(devissuer.WithHeader("jku", "http://127.0.0.1:1/jwks")))
	f.Add(seed(devissuer.WithHeader("crit", []string{"b64"}), devissuer.WithHeader("b64", false)))
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(`{"payload":"e30","protected":"eyJhbGciOiJSUzI1NiJ9","signature":""}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		payload, err := ks.VerifySignature(t.Context(), tok)
		if err == nil {
			if payload == nil {
				t.Fatal("got nil payload without an error")
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) &&
			!errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrNoKeys) {
			t.Fatalf("got unclassified error %v", err)
		}
	})
}
