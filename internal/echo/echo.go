// Package echo is the sample function used by the demo and the tests: it
// answers with a JSON description of exactly what it received, and can
// record every request so tests assert what reached the function.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Received is what the function saw.
type Received struct {
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	RawPath  string              `json:"rawPath,omitempty"`
	Query    string              `json:"query,omitempty"`
	Host     string              `json:"host"`
	Headers  map[string][]string `json:"headers"`
	BodySize int64               `json:"bodySize"`
}

// HeaderNames lists received header names, sorted.
func (r Received) HeaderNames() []string {
	out := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IdentityHeaders returns the X-Authgate-* headers received.
func (r Received) IdentityHeaders() map[string]string {
	out := map[string]string{}
	for k, v := range r.Headers {
		if strings.HasPrefix(strings.ToLower(k), "x-authgate-") {
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

// Function is the echo function with an optional request recorder.
type Function struct {
	mu       sync.Mutex
	received []Received
}

// New returns an echo function.
func New() *Function { return &Function{} }

// ServeHTTP echoes the request.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	rec := Received{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery,
		Host: r.Host, Headers: map[string][]string(r.Header.Clone()), BodySize: n,
	}
	f.mu.Lock()
	f.received = append(f.received, rec)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rec)
}

// Received returns every request seen so far.
func (f *Function) Received() []Received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Received(nil), f.received...)
}

// Count is how many requests reached the function.
func (f *Function) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.received)
}

// Last returns the most recent request and whether there was one.
func (f *Function) Last() (Received, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.received) == 0 {
		return Received{}, false
	}
	return f.received[len(f.received)-1], true
}

// Reset forgets recorded requests.
func (f *Function) Reset() {
	f.mu.Lock()
	f.received = nil
	f.mu.Unlock()
}
