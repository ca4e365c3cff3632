// Package admin serves the proxy's admin endpoints on their own port, which
// function traffic cannot reach: /healthz, /readyz, /metrics, /status and
// the function's own probes (/app-health/<name>, package appprobe).
package admin

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authgate/authgate/proxy/appprobe"
	"github.com/authgate/authgate/proxy/gateway"
)

// Readiness reports whether traffic may be sent.
type Readiness interface {
	Ready() bool
}

// JWKSPath serves the public keys of the namespace's identity assertions.
const JWKSPath = "/.well-known/authgate/assertion-jwks.json"

// JWKSSource returns the public key set (JSON) or an error when none.
type JWKSSource func() ([]byte, error)

// Handler returns the admin mux. appProbes (nil: none) serves the
// function's probes under appprobe.PathPrefix; jwks, when not nil, is
// served at JWKSPath (404 while it has no keys).
func Handler(sw *gateway.Switch, ready Readiness, gatherer prometheus.Gatherer, appProbes http.Handler, jwks JWKSSource) http.Handler {
	mux := http.NewServeMux()
	if appProbes != nil {
		mux.Handle("GET "+appprobe.PathPrefix, appProbes)
	}
	if jwks != nil {
		mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
			b, err := jwks()
			if err != nil {
				http.Error(w, "no identity assertion keys loaded", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/jwk-set+json")
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = w.Write(b)
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if sw.Load() == nil || !ready.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: no valid configuration loaded\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status(sw))
	})
	return mux
}

// Status is the /status document: which configuration is active and the
// health of each issuer's keys. It never holds keys or secrets.
type Status struct {
	Ready      bool           `json:"ready"`
	ConfigHash string         `json:"configHash,omitempty"`
	Policies   []string       `json:"policies"`
	Issuers    []IssuerStatus `json:"issuers"`
}

// IssuerStatus is one issuer's key health.
type IssuerStatus struct {
	Name        string `json:"name"`
	Keys        int    `json:"keys"`
	LastSuccess string `json:"lastSuccess,omitempty"`
	LastError   string `json:"lastError,omitempty"`
	Stale       bool   `json:"stale"`
	Remote      bool   `json:"remote"`
}

func status(sw *gateway.Switch) Status {
	rt := sw.Load()
	if rt == nil {
		return Status{Policies: []string{}, Issuers: []IssuerStatus{}}
	}
	st := Status{Ready: true, ConfigHash: rt.Hash(), Policies: rt.Policies(), Issuers: []IssuerStatus{}}
	for name, s := range rt.Authenticator().IssuerStatus() {
		is := IssuerStatus{Name: name, Keys: s.Keys, LastError: s.LastError, Stale: s.Stale, Remote: s.Remote}
		if !s.LastSuccess.IsZero() {
			is.LastSuccess = s.LastSuccess.UTC().Format("2006-01-02T15:04:05Z")
		}
		st.Issuers = append(st.Issuers, is)
	}
	sort.Slice(st.Issuers, func(i, j int) bool { return st.Issuers[i].Name < st.Issuers[j].Name })
	return st
}
