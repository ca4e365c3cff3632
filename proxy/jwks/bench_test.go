package jwks

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/metrics"
)

func BenchmarkVerifySignature(b *testing.B) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	iss.SetURL("https://idp.example.com")
	cfg := issuerConfig("https://idp.example.com", noRemote, inline(iss.PublicJWKS()))
	ks, err := New(Options{Issuer: cfg, Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []string{"RS256", "ES256"} {
		tok, err := iss.Mint(map[string]any{"sub": "alice"}, devissuer.WithAlg(alg))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ks.VerifySignature(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
