package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/pathpattern"
)

func TestRouterMatch(t *testing.T) {
	t.Parallel()
	routes := []config.Route{
		{Name: "health", Methods: []string{"GET"}, Paths: []string{"/healthz"}, Public: true},
		{Name: "admin", Paths: []string{"/admin/**"}},
		{Name: "orders-write", Methods: []string{"POST", "PUT"}, Paths: []string{"/orders", "/orders/*"}},
		{Name: "orders-read", Methods: []string{"GET"}, Paths: []string{"/orders/**"}},
		{Name: "head-only", Methods: []string{"HEAD"}, Paths: []string{"/orders/*"}},
		{Name: "catch-all-delete", Methods: []string{"DELETE"}},
	}
	r, err := NewRouter(routes)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	tests := []struct {
		method, path string
		want         string // "" = no match
	}{
		{"GET", "/healthz", "health"},
		{"POST", "/healthz", ""},
		{"GET", "/healthz/", ""},
		{"HEAD", "/healthz", ""},
		{"DELETE", "/admin/users", "admin"}, // order: admin before catch-all
		{"GET", "/admin", "admin"},
		{"GET", "/administrator", ""},
		{"POST", "/orders", "orders-write"},
		{"PUT", "/orders/7", "orders-write"},
		{"PUT", "/orders/7/items", ""},
		{"GET", "/orders", "orders-read"},
		{"GET", "/orders/7/items", "orders-read"},
		{"HEAD", "/orders/7", "head-only"},
		{"get", "/orders/7", ""},
		{"DELETE", "/anything", "catch-all-delete"},
		{"PATCH", "/orders/7", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			route, ok := r.Match(tc.method, tc.path)
			got := ""
			if ok {
				got = route.Name
			}
			if got != tc.want {
				t.Errorf("got route %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRouterKeepsOwnCopy(t *testing.T) {
	t.Parallel()
	routes := []config.Route{{Name: "a", Paths: []string{"/a"}}}
	r, err := NewRouter(routes)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	routes[0].Name = "changed"
	route, ok := r.Match("GET", "/a")
	if !ok || route.Name != "a" {
		t.Errorf("got %v %v, want route a", route, ok)
	}
}

func TestRouterEmpty(t *testing.T) {
	t.Parallel()
	r, err := NewRouter(nil)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	if _, ok := r.Match("GET", "/"); ok {
		t.Errorf("got a match from an empty router, want none")
	}
}

func TestNewRouterRejectsBadPattern(t *testing.T) {
	t.Parallel()
	_, err := NewRouter([]config.Route{{Name: "bad", Paths: []string{"/a/**/b"}}})
	if err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("got %v, want an error naming route bad", err)
	}
}

// TestNewRouterRejectsWhatValidationRejects: the router and config
// validation share one grammar (proxy/pathpattern), so a pattern the
// validator refuses is never compiled into a router either.
func TestNewRouterRejectsWhatValidationRejects(t *testing.T) {
	t.Parallel()
	for _, pat := range []string{"a/b", "", "/a/**/b", "/a*", "/a/b*c", "/a//b", "/a//**", "/**/**", "/a/../b", "/a/./b", "/a%2Fb", "/a;b", "/a?b"} {
		t.Run(pat, func(t *testing.T) {
			t.Parallel()
			_, err := NewRouter([]config.Route{{Name: "r", Paths: []string{"/ok", pat}}})
			var pe *pathpattern.Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *pathpattern.Error", err)
			}
			if want := "route r: path pattern: " + pe.Error(); err.Error() != want {
				t.Errorf("got %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestRouterMatchDoesNotAllocate(t *testing.T) {
	r, err := NewRouter([]config.Route{
		{Name: "a", Methods: []string{"GET", "POST"}, Paths: []string{"/x/*/y", "/api/v1/**"}},
		{Name: "b", Paths: []string{"/"}},
	})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Match("POST", "/api/v1/orders/42/items")
		r.Match("GET", "/nothing/here")
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per Match, want 0", allocs)
	}
}

// refMatch is a straightforward reference implementation of the pattern
// semantics, used to cross-check the compiled matcher.
func refMatch(pattern, path string) bool {
	if !strings.HasPrefix(path, "/") {
		return false
	}
	if pattern == "/**" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		// The prefix's segments must lead the path's; anything may follow.
		pSegs := strings.Split(prefix[1:], "/")
		segs := strings.Split(path[1:], "/")
		return len(segs) >= len(pSegs) && segsMatch(pSegs, segs[:len(pSegs)])
	}
	pSegs := strings.Split(pattern[1:], "/")
	segs := strings.Split(path[1:], "/")
	return len(pSegs) == len(segs) && segsMatch(pSegs, segs)
}

func segsMatch(pattern, segs []string) bool {
	for i, p := range pattern {
		if p == "*" {
			if segs[i] == "" {
				return false
			}
		} else if p != segs[i] {
			return false
		}
	}
	return true
}

func FuzzRouterMatch(f *testing.F) {
	patterns := []string{"/a/b", "/a/b/", "/a/*/c", "/a/**", "/a/*/**", "/**", "/", "/*", "/x/*/"}
	for _, p := range []string{"/a/b", "/a/b/", "/a//c", "/a/x/c", "/ab", "/a", "", "/", "//", "/a/x/y", "a/b", "/\x00/\xff"} {
		f.Add(p, uint8(0))
		f.Add(p, uint8(3))
	}
	compiled := make([]pathpattern.Pattern, len(patterns))
	for i, p := range patterns {
		c, err := pathpattern.Parse(p)
		if err != nil {
			f.Fatalf("Parse(%q): %v", p, err)
		}
		compiled[i] = c
	}
	routes := make([]config.Route, len(patterns))
	for i, p := range patterns {
		routes[i] = config.Route{Name: p, Paths: []string{p}}
	}
	r, err := NewRouter(routes)
	if err != nil {
		f.Fatalf("NewRouter: %v", err)
	}
	f.Fuzz(func(t *testing.T, path string, idx uint8) {
		i := int(idx) % len(patterns)
		got := compiled[i].Match(path)
		if want := refMatch(patterns[i], path); got != want {
			t.Fatalf("pattern %q path %q: got %v, want %v (reference)", patterns[i], path, got, want)
		}
		// The router returns the first pattern that the reference matches.
		route, ok := r.Match("GET", path)
		wantName := ""
		for _, p := range patterns {
			if refMatch(p, path) {
				wantName = p
				break
			}
		}
		gotName := ""
		if ok {
			gotName = route.Name
		}
		if gotName != wantName {
			t.Fatalf("Match(%q): got route %q, want %q", path, gotName, wantName)
		}
	})
}
