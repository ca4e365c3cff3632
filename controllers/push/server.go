package push

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
)

// BundleReader returns a namespace's current bundle (the bundle Secret's
// config.BundleKey), or nil, nil when the namespace has none.
type BundleReader func(ctx context.Context, namespace string) ([]byte, error)

// Defaults of Options.
const (
	DefaultMaxStreamsPerNamespace = 1000
	DefaultWriteTimeout           = 10 * time.Second
	DefaultMaxStreamAge           = time.Hour
)

// Options configure a Server. Auth, Read and Acks are required.
type Options struct {
	// Auth verifies the sidecars' tokens (a *TokenReviewer).
	Auth Authenticator
	// Read returns a namespace's bundle, sent when a stream opens.
	Read BundleReader
	// Acks receives the sidecars' acknowledgements.
	Acks *Acks
	// Metrics may be nil.
	Metrics *Metrics
	// Logger may be nil (nothing is logged).
	Logger *slog.Logger
	// MaxStreamsPerNamespace bounds each namespace's open streams (default
	// DefaultMaxStreamsPerNamespace); beyond it a watch is answered 429.
	MaxStreamsPerNamespace int
	// WriteTimeout bounds writing one Update (default
	// DefaultWriteTimeout): a client that reads nothing for that long has
	// its stream closed.
	WriteTimeout time.Duration
	// MaxStreamAge bounds how long a stream lives on one authentication
	// (default DefaultMaxStreamAge, less up to a tenth spread by pod so
	// streams do not end together): then it ends cleanly and the sidecar
	// reconnects with its current token. A stolen token, or one of a
	// deleted pod, does not hold a stream open for ever.
	MaxStreamAge time.Duration
	// Ready reports whether the server may answer (nil: always); when it
	// returns false requests are answered 503.
	Ready func() bool
}

// Validate reports a missing required option or a negative bound.
func (o Options) Validate() error {
	switch {
	case o.Auth == nil:
		return errors.New("push: Options.Auth is required")
	case o.Read == nil:
		return errors.New("push: Options.Read is required")
	case o.Acks == nil:
		return errors.New("push: Options.Acks is required")
	case o.MaxStreamsPerNamespace < 0:
		return errors.New("push: Options.MaxStreamsPerNamespace must not be negative")
	case o.WriteTimeout < 0:
		return errors.New("push: Options.WriteTimeout must not be negative")
	case o.MaxStreamAge < 0:
		return errors.New("push: Options.MaxStreamAge must not be negative")
	}
	return nil
}

// Server is the controller's side of the push channel: it streams each
// namespace's bundle to that namespace's sidecars and records their Acks.
type Server struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]map[*stream]struct{} // by namespace
	memo    map[string]*message             // the last bundle encoded, of namespaces with streams
	closed  bool
	done    chan struct{} // closed by Close
	encode  singleflight.Group
	// byToken holds the identities of the tokens open streams were
	// admitted with, by the token's SHA-256, and how many streams.
	byToken map[tokenKey]heldToken
}

type heldToken struct {
	id Identity
	n  int
}

// NewServer returns a Server. It panics when o fails Validate: a missing
// dependency is a programming error.
func NewServer(o Options) *Server {
	if err := o.Validate(); err != nil {
		panic(err)
	}
	if o.MaxStreamsPerNamespace == 0 {
		o.MaxStreamsPerNamespace = DefaultMaxStreamsPerNamespace
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxStreamAge == 0 {
		o.MaxStreamAge = DefaultMaxStreamAge
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{o: o, log: log, streams: map[string]map[*stream]struct{}{}, memo: map[string]*message{}, done: make(chan struct{}), byToken: map[tokenKey]heldToken{}}
}

// Handler serves pushapi.WatchPath and pushapi.AckPath.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pushapi.WatchPath, s.handleWatch)
	mux.HandleFunc(pushapi.AckPath, s.handleAck)
	return mux
}

// Publish sends the namespace's bundle data to the namespace's streams
// that were given no higher revision, and to no other stream. It never
// waits for a client, and does nothing for a namespace without streams.
// A bundle is decoded (its revision) and encoded once; publishing the
// same bytes again costs a SHA-256. The controller calls it after writing
// a bundle and on every bundle Secret event.
func (s *Server) Publish(namespace string, data []byte) {
	if len(data) == 0 || s.Streams(namespace) == 0 {
		return
	}
	m, err := s.message(namespace, data)
	if err != nil {
		s.log.Warn("push: bundle not published", "namespace", namespace, "error", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := range s.streams[namespace] {
		st.offer(m)
	}
}

// Streams is the number of the namespace's open streams.
func (s *Server) Streams(ns string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams[ns])
}

// Close ends every stream and refuses new ones (503), so that an
// http.Server's Shutdown can complete. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

var (
	errClosed     = errors.New("server closing")
	errTooMany    = errors.New("too many streams")
	errBadHave    = errors.New("bad revision query")
	errClientGone = errors.New("client gone")
	errStreamAge  = errors.New("stream at its maximum age")
)

// streamAge is maxAge less a part of its tenth that depends on the pod,
// so that streams opened together (at a controller restart) do not all
// end together.
func streamAge(maxAge time.Duration, podUID string) time.Duration {
	spread := maxAge / 10
	if spread <= 0 {
		return maxAge
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(podUID))
	return maxAge - time.Duration(h.Sum64()%uint64(spread))
}

func (s *Server) register(st *stream) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	set := s.streams[st.ns]
	if len(set) >= s.o.MaxStreamsPerNamespace {
		return errTooMany
	}
	if set == nil {
		set = map[*stream]struct{}{}
		s.streams[st.ns] = set
	}
	set[st] = struct{}{}
	s.o.Metrics.setStreams(st.ns, len(set))
	return nil
}

func (s *Server) unregister(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.streams[st.ns]
	delete(set, st)
	if len(set) == 0 {
		delete(s.streams, st.ns)
		delete(s.memo, st.ns)
	}
	s.o.Metrics.setStreams(st.ns, len(set))
}

// message is data as an Update, encoded once: the namespace's last one is
// kept while it has streams, and concurrent encodings of the same bytes
// (a namespace's sidecars reconnecting at once) are done once.
func (s *Server) message(ns string, data []byte) (*message, error) {
	hash := config.Hash(data)
	s.mu.Lock()
	m := s.memo[ns]
	s.mu.Unlock()
	if m != nil && m.hash == hash {
		return m, nil
	}
	v, err, _ := s.encode.Do(hash, func() (any, error) { return newMessage(data, hash) })
	if err != nil {
		return nil, err
	}
	m = v.(*message)
	s.mu.Lock()
	if len(s.streams[ns]) > 0 {
		s.memo[ns] = m
	}
	s.mu.Unlock()
	return m, nil
}

func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	id, key, ok := s.admit(w, r, false)
	if !ok {
		return
	}
	haveRev, haveHash, err := parseHave(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := newStream(id.Namespace, id.Pod)
	switch err := s.register(st); {
	case errors.Is(err, errTooMany):
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusTooManyRequests, "too many streams in this namespace")
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "server closing")
		return
	}
	defer s.unregister(st)
	defer s.holdToken(key, id)()
	if err := s.prime(r.Context(), st, haveRev, haveHash); err != nil {
		s.log.Warn("push: read bundle", "namespace", id.Namespace, "error", err)
		httpError(w, http.StatusServiceUnavailable, "bundle unavailable")
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives any server-wide WriteTimeout; write bounds each
	// write instead.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	s.log.Debug("push: stream opened", "namespace", id.Namespace, "pod", id.Pod)
	err = s.pump(r.Context(), rc, w, st, streamAge(s.o.MaxStreamAge, id.PodUID))
	s.log.Debug("push: stream closed", "namespace", id.Namespace, "pod", id.Pod, "reason", err.Error())
}

// parseHave reads what the client enforces: revision -1 when it says
// nothing.
func parseHave(r *http.Request) (int64, string, error) {
	q := r.URL.Query()
	revs, hashes := q[pushapi.QueryRevision], q[pushapi.QueryHash]
	if len(revs) > 1 || len(hashes) > 1 {
		return 0, "", fmt.Errorf("%w: repeated parameter", errBadHave)
	}
	rev, hash := int64(-1), ""
	if len(revs) == 1 {
		n, err := strconv.ParseInt(revs[0], 10, 64)
		if err != nil || n < 0 {
			return 0, "", fmt.Errorf("%w: %s must be a non-negative integer", errBadHave, pushapi.QueryRevision)
		}
		rev = n
	}
	if len(hashes) == 1 {
		hash = hashes[0]
	}
	return rev, hash, nil
}

// prime offers the namespace's current bundle to a new stream, unless the
// client says it holds exactly that one. The stream is registered first,
// so a Publish racing with the read is not lost: the higher revision wins.
func (s *Server) prime(ctx context.Context, st *stream, haveRev int64, haveHash string) error {
	data, err := s.o.Read(ctx, st.ns)
	if err != nil {
		return err
	}
	if data == nil {
		return nil
	}
	m, err := s.message(st.ns, data)
	if err != nil {
		// The sidecar keeps what it has (its mounted file); nothing to send.
		s.log.Warn("push: bundle not sent", "namespace", st.ns, "error", err)
		return nil
	}
	if m.revision == haveRev && m.hash == haveHash {
		st.skip(m.revision)
		return nil
	}
	st.offer(m)
	return nil
}

// pump writes the stream's pending message whenever there is one, until
// the client leaves, the server closes, the stream is age old or a write
// fails.
func (s *Server) pump(ctx context.Context, rc *http.ResponseController, w http.ResponseWriter, st *stream, age time.Duration) error {
	expire := time.NewTimer(age)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return errClientGone
		case <-s.done:
			return errClosed
		case <-expire.C:
			return errStreamAge
		case <-st.wake:
		}
		m := st.take()
		if m == nil {
			continue
		}
		if err := write(rc, w, m, s.o.WriteTimeout); err != nil {
			return err
		}
		s.o.Metrics.updateSent(st.ns)
	}
}
