// Package authz decides whether an authenticated request may proceed: it
// matches the request to a policy route, checks the route's declarative
// rules and evaluates the policy's Rego.
package authz

import (
	"fmt"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

// Router matches requests to a policy's routes. It is immutable and safe for
// concurrent use.
type Router struct {
	routes []config.Route
	comp   []compiledRoute
}

type compiledRoute struct {
	methods  []string // empty: every method
	patterns []pattern
	anyPath  bool
}

// pattern is a precompiled path pattern: one entry per "/"-separated
// segment after the leading slash, and prefix for a trailing "/**".
type pattern struct {
	segs   []segment
	prefix bool
}

type segment struct {
	lit  string
	star bool // "*": exactly one non-empty segment
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
			pat, err := compilePattern(p)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", rt.Name, err)
			}
			c.patterns = append(c.patterns, pat)
		}
	}
	return r, nil
}

// compilePattern parses "/a/*/c", "/a/b/" or "/a/**".
func compilePattern(p string) (pattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pattern{}, fmt.Errorf("path pattern %q must start with /", p)
	}
	var pat pattern
	body := p[1:]
	switch {
	case body == "**":
		return pattern{prefix: true}, nil
	case strings.HasSuffix(body, "/**"):
		pat.prefix = true
		body = strings.TrimSuffix(body, "/**")
	}
	parts := strings.Split(body, "/")
	pat.segs = make([]segment, len(parts))
	for i, s := range parts {
		switch {
		case s == "*":
			pat.segs[i].star = true
		case strings.Contains(s, "*"):
			return pattern{}, fmt.Errorf("path pattern %q: * and ** must be whole segments, ** only last", p)
		case s == "" && i != len(parts)-1:
			return pattern{}, fmt.Errorf("path pattern %q has an empty segment", p)
		case s == "" && pat.prefix:
			return pattern{}, fmt.Errorf("path pattern %q has an empty segment before /**", p)
		default:
			pat.segs[i].lit = s
		}
	}
	return pat, nil
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
		if c.patterns[i].match(path) {
			return true
		}
	}
	return false
}

// match walks path segment by segment without splitting it.
func (p *pattern) match(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	pos, more := 1, true // more: a segment starts at pos
	for _, s := range p.segs {
		if !more {
			return false
		}
		var cur string
		if end := strings.IndexByte(path[pos:], '/'); end < 0 {
			cur, pos, more = path[pos:], len(path), false
		} else {
			cur, pos = path[pos:pos+end], pos+end+1
		}
		if s.star {
			if cur == "" {
				return false
			}
		} else if cur != s.lit {
			return false
		}
	}
	return p.prefix || !more
}
