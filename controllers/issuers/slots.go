package issuers

import (
	"slices"
	"sync"
)

// DefaultMaxConcurrentFetchesPerNamespace is Options.MaxConcurrentFetchesPerNamespace
// unless set.
const DefaultMaxConcurrentFetchesPerNamespace = 4

// slots counts the refreshes running per namespace and grants a new one
// only while a namespace has a free slot. A refresh is charged to exactly
// one namespace: of the namespaces that use the issuer, the one with the
// fewest refreshes running (ties: the first by name). So a refresh of an
// issuer several namespaces share waits only when every one of them is
// full: a tenant whose own issuers hang cannot hold back an issuer another
// namespace uses too, and it cannot spend another namespace's slots on
// issuers only it uses.
type slots struct {
	limit int

	mu      sync.Mutex
	running map[string]int
}

func newSlots(limit int) *slots {
	return &slots{limit: limit, running: map[string]int{}}
}

// acquire charges a refresh to one of namespaces (sorted; none: the
// unowned pool "") and returns it; false when every one is full. A limit
// of 0 or less grants everything, charged to the first.
func (s *slots) acquire(namespaces []string) (string, bool) {
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best, bestN := "", -1
	for _, ns := range namespaces {
		n := s.running[ns]
		if s.limit > 0 && n >= s.limit {
			continue
		}
		if bestN < 0 || n < bestN {
			best, bestN = ns, n
		}
	}
	if bestN < 0 {
		return "", false
	}
	s.running[best]++
	return best, true
}

// release ends a refresh charged to ns and returns what ns still runs.
func (s *slots) release(ns string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running[ns]--
	n := s.running[ns]
	if n <= 0 {
		delete(s.running, ns)
	}
	return n
}

// inFlight returns the refreshes charged to ns now.
func (s *slots) inFlight(ns string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[ns]
}

// sortedUnique returns namespaces sorted without duplicates.
func sortedUnique(namespaces []string) []string {
	out := slices.Clone(namespaces)
	slices.Sort(out)
	return slices.Compact(out)
}
