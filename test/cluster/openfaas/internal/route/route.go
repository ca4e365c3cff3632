// Package route is a reproduction of the routing behaviour of gorilla/mux
// v1.8.1 (as vendored by openfaas/faas-netes@662ce9ce36ec4a32467773c308807bd5d58f5ae6
// and used by openfaas/faas-provider@f53fe6362ce959e032b8c063318ca5e38c0cbed8
// and openfaas/faas@8d803bf9e2655aec6a60fd0e25b392839f96af95) for the few
// routes the gateway and provider reproductions register: the request path is
// cleaned first (an unclean path is answered 301 to the cleaned one, query
// kept), routes are tried in order against the decoded path, a route whose
// path matches but whose methods do not makes 405 with an empty body, and no
// match is 404 "404 page not found".
//
// It is written for these tests, not copied: only the behaviour is the same.
package route

import (
	"context"
	"net/http"
	"path"
	"regexp"
	"slices"
)

// Router matches requests against routes in the order they were added.
type Router struct {
	routes []entry
}

type entry struct {
	re      *regexp.Regexp
	methods []string
	h       http.Handler
}

type varsKey struct{}

// Handle adds a route. pattern is a regular expression matched against the
// whole decoded path; its named groups become the route's variables. No
// methods means any method.
func (rt *Router) Handle(pattern string, h http.Handler, methods ...string) {
	rt.routes = append(rt.routes, entry{re: regexp.MustCompile("^" + pattern + "$"), methods: methods, h: h})
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(pattern string, h http.HandlerFunc, methods ...string) {
	rt.Handle(pattern, h, methods...)
}

// ServeHTTP routes r.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := cleanPath(r.URL.Path); p != r.URL.Path {
		u := *r.URL
		u.Path = p
		u.RawPath = ""
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	methodMismatch := false
	for _, e := range rt.routes {
		m := e.re.FindStringSubmatch(r.URL.Path)
		if m == nil {
			continue
		}
		if len(e.methods) > 0 && !slices.Contains(e.methods, r.Method) {
			methodMismatch = true
			continue
		}
		vars := map[string]string{}
		for i, name := range e.re.SubexpNames() {
			if name != "" {
				vars[name] = m[i]
			}
		}
		e.h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), varsKey{}, vars)))
		return
	}
	if methodMismatch {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	http.NotFound(w, r)
}

// Var returns the route variable name of r, or "".
func Var(r *http.Request, name string) string {
	vars, _ := r.Context().Value(varsKey{}).(map[string]string)
	return vars[name]
}

// cleanPath is gorilla/mux's: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
