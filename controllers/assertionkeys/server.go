package assertionkeys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/internal/assertionkey"
)

// Server serves GET /namespaces/{namespace}/jwks.json: the public keys of
// the namespace's identity assertions, read from the cached ConfigMap
// authgate-assertion-jwks (404 when the namespace has none). The keys are
// public; every replica serves them, leader or not.
type Server struct {
	Addr   string
	Reader client.Reader
}

// Handler is the server's mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /namespaces/{namespace}/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		ns := r.PathValue("namespace")
		if len(validation.IsDNS1123Label(ns)) > 0 {
			http.Error(w, "not a namespace name", http.StatusBadRequest)
			return
		}
		cm := &corev1.ConfigMap{}
		err := s.Reader.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: assertionkey.JWKSConfigMapName}, cm)
		body, ok := cm.Data[assertionkey.JWKSKey]
		if err != nil || !ok || cm.Labels[labelManaged] != managedByUs {
			http.Error(w, "no identity assertion keys in this namespace", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(body))
	})
	return mux
}

// Start serves until ctx is done (manager.Runnable).
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.Addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NeedLeaderElection is false: every replica serves the public keys.
func (s *Server) NeedLeaderElection() bool { return false }
