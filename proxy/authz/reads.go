package authz

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decisionInputs are the parts of the input document a cached decision may
// depend on: everything its cache key fixes. The identity is fixed by the
// verified credential, the route and policy names by the policy version,
// method and canonical path (input.request.segments is derived from the
// path). A policy whose query can read anything else (headers, query, host,
// client address, time, or the input as a whole) is never cached.
var decisionInputs = map[string]map[string]bool{
	"identity": nil, // the whole subtree
	"route":    nil,
	"policy":   nil,
	"request":  {"method": true, "path": true, "segments": true},
}

// decisionCacheable decides, from the compiled modules, whether every
// evaluation of query reads only decisionInputs. It follows every rule the
// query can reach (over-approximating: a rule is reached when its path and
// a data reference could overlap), and refuses on any input reference
// outside decisionInputs, one whose key is not a constant before it is
// inside them, the input document used as a value, or a `with` modifier.
// The Rego the proxy runs cannot call non-deterministic built-ins (Compile
// refuses them), so within those reads a decision is a function of its key.
// When it refuses, why names the first reason found and where.
func decisionCacheable(c *ast.Compiler, query ast.Body) (ok bool, why string) {
	a := &readAnalysis{c: c, seen: map[*ast.Rule]bool{}}
	a.walk(query)
	for len(a.queue) > 0 && a.why == "" {
		ref := a.queue[0]
		a.queue = a.queue[1:]
		for _, m := range c.Modules {
			for _, r := range m.Rules {
				a.visitRule(r, ref)
			}
		}
	}
	return a.why == "", a.why
}

type readAnalysis struct {
	c     *ast.Compiler
	seen  map[*ast.Rule]bool
	queue []ast.Ref
	why   string
}

// visitRule walks r (and its else chain) once if it may produce part of
// the document ref refers to.
func (a *readAnalysis) visitRule(r *ast.Rule, ref ast.Ref) {
	if a.seen[r] || !overlaps(r.Ref().GroundPrefix(), ref.GroundPrefix()) {
		return
	}
	a.seen[r] = true
	a.walk(r.Head.Reference)
	a.walk(r)
}

// overlaps reports whether two ground paths can name the same document:
// one is a prefix of the other.
func overlaps(a, b ast.Ref) bool { return a.HasPrefix(b) || b.HasPrefix(a) }

func (a *readAnalysis) walk(x any) {
	if x == nil {
		return
	}
	ast.NewGenericVisitor(func(x any) bool {
		if a.why != "" {
			return true
		}
		switch t := x.(type) {
		case *ast.Expr:
			if len(t.With) > 0 {
				a.refuse(t.Location, "uses a with modifier")
				return true
			}
		case ast.Var:
			if t.Equal(ast.InputRootDocument.Value) {
				a.refuse(nil, "uses the whole input document")
				return true
			}
		case ast.Ref:
			return a.ref(t)
		}
		return false
	}).Walk(x)
}

// ref checks or queues one reference; it walks the reference's own terms
// (the expressions inside brackets) but not its head, and returns true so
// the visitor does not descend again.
func (a *readAnalysis) ref(r ast.Ref) bool {
	if len(r) == 0 {
		return true
	}
	switch {
	case r[0].Equal(ast.InputRootDocument):
		if why := inputReadOutside(r); why != "" {
			a.refuse(r[0].Location, why)
			return true
		}
	case r[0].Equal(ast.DefaultRootDocument):
		a.queue = append(a.queue, r)
	}
	for _, t := range r[1:] {
		a.walk(t)
	}
	return true
}

// inputReadOutside returns why the input reference r is not within
// decisionInputs, or "" when it is.
func inputReadOutside(r ast.Ref) string {
	key := func(i int) (string, bool) {
		if i >= len(r) {
			return "", false
		}
		s, ok := r[i].Value.(ast.String)
		return string(s), ok
	}
	top, ok := key(1)
	if !ok {
		return "reads " + r.String() + " (the input document, or a key that is not a constant)"
	}
	sub, known := decisionInputs[top]
	if !known {
		return "reads " + r.String()
	}
	if sub == nil {
		return ""
	}
	leaf, ok := key(2)
	if !ok || !sub[leaf] {
		return "reads " + r.String()
	}
	return ""
}

func (a *readAnalysis) refuse(loc *ast.Location, why string) {
	if loc != nil && loc.File != "" {
		why = fmt.Sprintf("%s:%d: %s", loc.File, loc.Row, why)
	}
	a.why = why
}
