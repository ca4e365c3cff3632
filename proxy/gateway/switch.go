package gateway

import (
	"net/http"
	"sync/atomic"
)

// Switch serves requests with the current runtime and answers 503 while no
// valid configuration has been loaded. Swapping is atomic: a request runs
// entirely on the runtime it started with, and there is never a window
// without a policy.
type Switch struct {
	current atomic.Pointer[Runtime]
}

// Store makes rt the active runtime and returns the previous one. The
// State rt was built from then drops whatever rt does not use.
func (s *Switch) Store(rt *Runtime) *Runtime {
	old := s.current.Swap(rt)
	if rt != nil {
		rt.state.activate(rt.use)
	}
	return old
}

// Load returns the active runtime, or nil.
func (s *Switch) Load() *Runtime { return s.current.Load() }

// ServeHTTP dispatches to the active runtime.
func (s *Switch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.current.Load()
	if rt == nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", errNoRuntime.Error(), "", 0)
		return
	}
	rt.ServeHTTP(w, r)
}
