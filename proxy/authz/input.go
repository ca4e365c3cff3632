package authz

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/proxy/identity"
)

// Request is the verified, canonical view of an HTTP request that Rego sees.
type Request struct {
	// Method is the HTTP method, e.g. "GET".
	Method string
	// Path is the canonical, decoded path the route matched and that is
	// forwarded.
	Path string
	// Host is the request's Host.
	Host string
	// ClientIP is the caller's address: the peer, or the forwarded client
	// when the peer is a trusted proxy.
	ClientIP string
	// Segments are Path's segments without the leading empty one
	// ("/a/b" → ["a", "b"]). When nil they are derived from Path.
	Segments []string
	// Query holds the decoded query parameters.
	Query url.Values
	// Headers are the request headers; credentials, X-Authgate-* and
	// invalid names are left out of the input.
	Headers http.Header
}

// Input is one Rego input document, built directly as an OPA value (no
// JSON round trip). It is immutable.
type Input struct {
	value ast.Value
	now   time.Time
}

// NewInput builds the input document described in docs/rego-input.md. id is
// nil on public routes, and input.identity is then absent. The
// Authorization, Proxy-Authorization and Cookie headers, every header named
// in credentialHeaders and every X-Authgate-* header (client-sent identity is
// never trusted) are left out of input.request.headers, so credentials never
// reach Rego.
func NewInput(req Request, id *identity.Identity, policy, route string, now time.Time, credentialHeaders []string) *Input {
	b := &builder{}
	// NewObject stores all pairs in one block; Insert allocates per pair.
	pairs := make([][2]*ast.Term, 0, 5)
	pairs = append(pairs,
		[2]*ast.Term{keys.request, b.term(b.request(&req, credentialHeaders))},
		[2]*ast.Term{keys.route, b.str(route)},
		[2]*ast.Term{keys.policy, b.str(policy)},
		[2]*ast.Term{keys.time, b.term(ast.NewObject(
			[2]*ast.Term{keys.unixNS, b.term(ast.Number(strconv.FormatInt(now.UnixNano(), 10)))},
			[2]*ast.Term{keys.rfc3339, b.str(now.UTC().Format(time.RFC3339Nano))},
		))},
	)
	if id != nil {
		pairs = append(pairs, [2]*ast.Term{keys.identity, identityTerm(id)})
	}
	return &Input{value: ast.NewObject(pairs...), now: now}
}

// keys are the input document's fixed keys, built once and shared read-only
// by every input (OPA does not modify input terms; it shares interned terms
// the same way).
var keys = struct {
	request, identity, route, policy, time, unixNS, rfc3339 *ast.Term
	method, path, segments, query, headers, host, clientIP  *ast.Term
	kind, subject, issuer, source, scopes, roles, claims    *ast.Term
}{
	ast.StringTerm("request"), ast.StringTerm("identity"), ast.StringTerm("route"), ast.StringTerm("policy"),
	ast.StringTerm("time"), ast.StringTerm("unix_ns"), ast.StringTerm("rfc3339"),
	ast.StringTerm("method"), ast.StringTerm("path"), ast.StringTerm("segments"), ast.StringTerm("query"),
	ast.StringTerm("headers"), ast.StringTerm("host"), ast.StringTerm("client_ip"),
	ast.StringTerm("kind"), ast.StringTerm("subject"), ast.StringTerm("issuer"), ast.StringTerm("source"),
	ast.StringTerm("scopes"), ast.StringTerm("roles"), ast.StringTerm("claims"),
}

// builder hands out terms from slabs, so building an input costs a few
// allocations per value instead of one per term.
type builder struct {
	slab []ast.Term
}

func (b *builder) term(v ast.Value) *ast.Term {
	if len(b.slab) == 0 {
		b.slab = make([]ast.Term, 32)
	}
	t := &b.slab[0]
	b.slab = b.slab[1:]
	t.Value = v
	return t
}

func (b *builder) str(s string) *ast.Term { return b.term(ast.String(s)) }

// Value returns the input as an OPA value. It must not be modified.
func (in *Input) Value() ast.Value { return in.value }

// MarshalJSON renders the input as JSON, as a policy author would see it
// (e.g. for `opa eval --input`).
func (in *Input) MarshalJSON() ([]byte, error) {
	v, err := ast.JSON(in.value)
	if err != nil {
		return nil, fmt.Errorf("convert rego input: %w", err)
	}
	return json.Marshal(v)
}

func (b *builder) request(req *Request, credentialHeaders []string) ast.Value {
	segs := req.Segments
	if segs == nil {
		segs = splitSegments(req.Path)
	}
	// Query keys are distinct, so the pairs go to NewObject at once.
	qpairs := make([][2]*ast.Term, 0, len(req.Query))
	for k, vs := range req.Query {
		qpairs = append(qpairs, [2]*ast.Term{b.str(k), b.term(b.strings(vs))})
	}
	query := ast.NewObject(qpairs...)
	return ast.NewObject(
		[2]*ast.Term{keys.method, b.str(req.Method)},
		[2]*ast.Term{keys.path, b.str(req.Path)},
		[2]*ast.Term{keys.segments, b.term(b.strings(segs))},
		[2]*ast.Term{keys.query, b.term(query)},
		[2]*ast.Term{keys.headers, b.term(b.headers(req.Headers, credentialHeaders))},
		[2]*ast.Term{keys.host, b.str(req.Host)},
		[2]*ast.Term{keys.clientIP, b.str(req.ClientIP)},
	)
}

// splitSegments splits "/a/b" into ["a", "b"]; "/" and "" have none.
func splitSegments(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return []string{}
	}
	return strings.Split(p, "/")
}

func (b *builder) headers(h http.Header, credentialHeaders []string) ast.Object {
	obj := ast.NewObjectWithCapacity(len(h))
	for name, vals := range h {
		if !httpguts.ValidHeaderFieldName(name) || excludedHeader(name, credentialHeaders) {
			continue
		}
		key := b.str(asciiLower(name))
		val := strings.Join(vals, ", ")
		if prev := obj.Get(key); prev != nil {
			// Non-canonical duplicates ("X-A" and "x-a") merge.
			if s, ok := prev.Value.(ast.String); ok {
				val = string(s) + ", " + val
			}
		}
		obj.Insert(key, b.str(val))
	}
	return obj
}

// asciiLower lower-cases ASCII letters only, so a name keeps its bytes
// (strings.ToLower would map e.g. the Kelvin sign to "k").
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// excludedHeader reports headers that carry credentials or client-sent
// identity. "_" counts as "-", as some servers treat them alike.
func excludedHeader(name string, credentialHeaders []string) bool {
	if foldDash(name, "authorization") || foldDash(name, "proxy-authorization") || foldDash(name, "cookie") {
		return true
	}
	const reserved = "x-authgate-"
	if len(name) >= len(reserved) && foldDash(name[:len(reserved)], reserved) {
		return true
	}
	for _, c := range credentialHeaders {
		if foldDash(name, c) {
			return true
		}
	}
	return false
}

// foldDash compares ASCII case-insensitively, treating "_" as "-".
func foldDash(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}

// identityTerm returns input.identity for id. It is converted once per
// Identity and kept in id.Derived, so a cached identity costs nothing per
// request; every input built for id shares the term. OPA treats input as
// immutable (`with input... as` deep-copies it first), and frozen values
// are only read, so sharing it between concurrent evaluations is safe.
func identityTerm(id *identity.Identity) *ast.Term {
	if t, ok := id.Derived.Load(id).(*ast.Term); ok {
		return t
	}
	b := &builder{}
	t := b.term(b.identity(id))
	freeze(t.Value)
	if cached, ok := id.Derived.LoadOrStore(id, t).(*ast.Term); ok {
		return cached
	}
	return t
}

// freeze completes the lazy state of v before it is shared: an object sorts
// its keys in place on first ordered access (under a sync.Once), but
// Object.Copy reads them without that guard, so a copy racing the first
// sort could see a half-sorted slice. Sorting every object up front leaves
// nothing to write later. Arrays need nothing: the builder makes them with
// len == cap, so Array.Append copies rather than writing in place.
func freeze(v ast.Value) {
	switch t := v.(type) {
	case ast.Object:
		t.Foreach(func(k, e *ast.Term) {
			freeze(k.Value)
			freeze(e.Value)
		})
	case *ast.Array:
		t.Foreach(func(e *ast.Term) { freeze(e.Value) })
	}
}

func (b *builder) identity(id *identity.Identity) ast.Value {
	return ast.NewObject(
		[2]*ast.Term{keys.kind, b.str(string(id.Kind))},
		[2]*ast.Term{keys.subject, b.str(id.Subject)},
		[2]*ast.Term{keys.issuer, b.str(id.Issuer)},
		[2]*ast.Term{keys.source, b.str(id.Source)},
		[2]*ast.Term{keys.scopes, b.term(b.strings(id.Scopes))},
		[2]*ast.Term{keys.roles, b.term(b.strings(id.Roles))},
		[2]*ast.Term{keys.claims, b.term(b.claim(map[string]any(id.Claims)))},
	)
}

func (b *builder) strings(ss []string) *ast.Array {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = b.str(s)
	}
	return ast.NewArray(terms...)
}

// claim converts a decoded claim to an OPA value. Numbers stay exact:
// json.Number becomes an ast.Number with the same text.
func (b *builder) claim(v any) ast.Value {
	switch t := v.(type) {
	case nil:
		return ast.Null{}
	case string:
		return ast.String(t)
	case bool:
		return ast.Boolean(t)
	case json.Number:
		// Identity claims are decoded by encoding/json, so t is a valid
		// JSON number.
		return ast.Number(t)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return ast.Null{}
		}
		return ast.Number(strconv.FormatFloat(t, 'g', -1, 64))
	case int:
		return ast.Number(strconv.Itoa(t))
	case int64:
		return ast.Number(strconv.FormatInt(t, 10))
	case []string:
		return b.strings(t)
	case []any:
		terms := make([]*ast.Term, len(t))
		for i, e := range t {
			terms[i] = b.term(b.claim(e))
		}
		return ast.NewArray(terms...)
	case map[string]any:
		obj := ast.NewObjectWithCapacity(len(t))
		for k, e := range t {
			obj.Insert(b.str(k), b.term(b.claim(e)))
		}
		return obj
	default:
		// Claims come from one JSON decoding, so this is not reached; a
		// foreign type becomes null rather than guessed at.
		return ast.Null{}
	}
}
