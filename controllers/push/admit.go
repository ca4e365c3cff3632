package push

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
)

// admit answers a request the server is not ready for (503) or whose
// credential fails (401, or 503 when it could not be checked), and
// returns the verified identity otherwise. Nothing of the token is ever
// written back or logged. It also returns the token's key. With
// fromStreams, a token that an open stream of this server was admitted with is taken
// without a review: the stream stays authorised on it anyway (up to
// MaxStreamAge), so an acknowledgement on the same credential costs no
// TokenReview, however long ago the review cache forgot it.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, fromStreams bool) (Identity, tokenKey, bool) {
	if s.o.Ready != nil && !s.o.Ready() {
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "not ready")
		return Identity{}, tokenKey{}, false
	}
	token, ok := bearerToken(r)
	if !ok {
		s.o.Metrics.authFailure(ReasonInvalid)
		unauthorized(w, "")
		return Identity{}, tokenKey{}, false
	}
	key := tokenKey(sha256.Sum256([]byte(token)))
	if fromStreams {
		if id, ok := s.streamIdentity(key); ok {
			return id, key, true
		}
	}
	id, err := s.o.Auth.Authenticate(r.Context(), token)
	switch {
	case err == nil:
		return id, key, true
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
	return Identity{}, tokenKey{}, false
}

// streamIdentity is the identity an open stream was admitted with on the
// token whose key is key.
func (s *Server) streamIdentity(key tokenKey) (Identity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byToken[key]
	return e.id, ok
}

// holdToken records that a stream is open on key (release undoes it).
func (s *Server) holdToken(key tokenKey, id Identity) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byToken[key]
	e.id, e.n = id, e.n+1
	s.byToken[key] = e
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.byToken[key]
		if e.n <= 1 {
			delete(s.byToken, key)
			return
		}
		e.n--
		s.byToken[key] = e
	}
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
