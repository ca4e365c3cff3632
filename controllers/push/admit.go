package push

import (
	"encoding/json"
	"errors"
	"net/http"
)

// admit answers a request the server is not ready for (503) or whose
// credential fails (401, or 503 when it could not be checked), and
// returns the verified identity otherwise. Nothing of the token is ever
// written back or logged.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (Identity, bool) {
	if s.o.Ready != nil && !s.o.Ready() {
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "not ready")
		return Identity{}, false
	}
	token, ok := bearerToken(r)
	if !ok {
		s.o.Metrics.authFailure(ReasonInvalid)
		unauthorized(w, "")
		return Identity{}, false
	}
	id, err := s.o.Auth.Authenticate(r.Context(), token)
	switch {
	case err == nil:
		return id, true
	case errors.Is(err, ErrInvalidCredential):
		s.o.Metrics.authFailure(ReasonInvalid)
		s.log.Debug("push: credential refused", "path", r.URL.Path, "error", err)
		unauthorized(w, "invalid_token")
	default:
		// A server-side fault (or an unclassified error): never counted
		// against the client, and never access.
		s.o.Metrics.authFailure(ReasonUnavailable)
		s.log.Warn("push: credential not checked", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "authentication unavailable")
	}
	return Identity{}, false
}

// unauthorized answers 401 with a Bearer challenge (RFC 6750).
func unauthorized(w http.ResponseWriter, code string) {
	challenge := `Bearer realm="authgate-push"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	httpError(w, http.StatusUnauthorized, "unauthorized")
}

// httpError writes {"error": msg}; msg is never taken from a credential.
func httpError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
