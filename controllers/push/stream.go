package push

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
)

// message is one Update, encoded once for every stream it goes to.
type message struct {
	revision int64
	hash     string
	frame    []byte // the Update's JSON and a newline, as json.Encoder writes it
}

// newMessage encodes the bundle data, whose config.Hash is hash, as an
// Update. Its revision is the bundle's revision line (config.HeadRevision,
// 0 when absent), read without decoding the bundle.
func newMessage(data []byte, hash string) (*message, error) {
	if len(data) == 0 {
		return nil, errors.New("empty bundle")
	}
	if len(data) > config.MaxFileBytes {
		return nil, fmt.Errorf("bundle is %d bytes, more than the %d allowed", len(data), config.MaxFileBytes)
	}
	u := pushapi.Update{Revision: config.HeadRevision(data), Hash: hash, Data: data}
	frame, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encode update: %w", err)
	}
	return &message{revision: u.Revision, hash: u.Hash, frame: append(frame, '\n')}, nil
}

// stream is one open watch. It holds at most one message not yet written,
// the newest: a bundle is a whole snapshot, so one that was superseded
// before it was written need never be.
type stream struct {
	ns, pod string
	wake    chan struct{} // capacity 1: a message is pending

	mu      sync.Mutex // never held while writing to the client
	last    int64      // the highest revision written or pending; -1: none
	pending *message
}

func newStream(ns, pod string) *stream {
	return &stream{ns: ns, pod: pod, wake: make(chan struct{}, 1), last: -1}
}

// offer makes m the stream's pending message if its revision is above
// every one the stream was given. It never blocks on the client.
func (st *stream) offer(m *message) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if m.revision <= st.last {
		return false
	}
	st.last, st.pending = m.revision, m
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return true
}

// skip records that the client already holds revision rev.
func (st *stream) skip(rev int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.last = max(st.last, rev)
}

// take returns the pending message, if any, and clears it.
func (st *stream) take() *message {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.pending
	st.pending = nil
	return m
}

// write sends m within timeout: a client that does not read for that long
// has its stream reset. The deadline is lifted afterwards, so an idle
// stream stays open.
func write(rc *http.ResponseController, w http.ResponseWriter, m *message, timeout time.Duration) error {
	if err := rc.SetWriteDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := w.Write(m.frame); err != nil {
		return fmt.Errorf("write update: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flush update: %w", err)
	}
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("clear write deadline: %w", err)
	}
	return nil
}
