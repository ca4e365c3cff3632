package push

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/authgate/authgate/internal/pushapi"
)

// ackReadTimeout bounds reading an Ack body.
const ackReadTimeout = 10 * time.Second

// handleAck serves pushapi.AckPath: a verified pod reports what it
// enforces.
func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	id, _, ok := s.admit(w, r, true)
	if !ok {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(ackReadTimeout))
	a, err := decodeAck(w, r)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		httpError(w, http.StatusRequestEntityTooLarge, "ack too large")
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, "malformed ack")
		return
	}
	if err := ValidateAck(id.Namespace, a); err != nil {
		httpError(w, http.StatusBadRequest, "invalid ack: "+err.Error())
		return
	}
	s.o.Acks.Record(id.Namespace, id.Pod, id.PodUID, a)
	s.o.Metrics.ack(id.Namespace, a.Source)
	w.WriteHeader(http.StatusNoContent)
}

// decodeAck reads one JSON Ack, strictly, from a body of at most
// pushapi.MaxAckBytes.
func decodeAck(w http.ResponseWriter, r *http.Request) (pushapi.Ack, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, pushapi.MaxAckBytes))
	dec.DisallowUnknownFields()
	var a pushapi.Ack
	if err := dec.Decode(&a); err != nil {
		return pushapi.Ack{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return pushapi.Ack{}, err
		}
		return pushapi.Ack{}, errors.New("data after the ack")
	}
	return a, nil
}
