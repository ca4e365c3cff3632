// Package authz decides whether an authenticated request may proceed: it
// matches the request to a policy route, checks the route's declarative
// rules and evaluates the policy's Rego.
package authz

import (
	"fmt"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/pathpattern"
)

// Router matches requests to a policy's routes. It is immutable and safe for
// concurrent use.
type Router struct {
	routes []config.Route
	comp   []compiledRoute
}

type compiledRoute struct {
	methods  []string // empty: every method
	patterns []pathpattern.Pattern
	anyPath  bool
}

// NewRouter compiles routes, which must already be defaulted and validated.
// The router keeps its own copy of the routes.
func NewRouter(routes []config.Route) (*Router, error) {
	r := &Router{
		routes: append([]config.Route(nil), routes...),
		comp:   make([]compiledRoute, len(routes)),
	}
	for i := range r.routes {
		rt := &r.routes[i]
		c := &r.comp[i]
		c.methods = rt.Methods
		c.anyPath = len(rt.Paths) == 0
		for _, p := range rt.Paths {
			pat, err := pathpattern.Parse(p)
			if err != nil {
				return nil, fmt.Errorf("route %s: path pattern: %w", rt.Name, err)
			}
			c.patterns = append(c.patterns, pat)
		}
	}
	return r, nil
}

// Match returns the first route, in order, matching method and path (the
// canonical, decoded path, never the query). Matching is case-sensitive,
// HEAD is not GET, and it does not allocate. The returned route must not be
// modified.
func (r *Router) Match(method, path string) (route *config.Route, ok bool) {
	for i := range r.comp {
		if r.comp[i].match(method, path) {
			return &r.routes[i], true
		}
	}
	return nil, false
}

func (c *compiledRoute) match(method, path string) bool {
	if len(c.methods) > 0 {
		found := false
		for _, m := range c.methods {
			if m == method {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if c.anyPath {
		return true
	}
	for i := range c.patterns {
		if c.patterns[i].Match(path) {
			return true
		}
	}
	return false
}
