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
	// pathpattern's own fuzz target checks Match against a reference; this
	// one checks the router's part: the first route whose pattern matches.
	f.Fuzz(func(t *testing.T, path string, _ uint8) {
		route, ok := r.Match("GET", path)
		wantName := ""
		for i, c := range compiled {
			if c.Match(path) {
				wantName = patterns[i]
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
