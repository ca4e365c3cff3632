package forwarded

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"

	"github.com/authgate/authgate/proxy/headername"
)

// Header kinds for scrubbing.
const (
	kindOther      = iota
	kindClientAddr // names the client's address: always rebuilt or removed
	kindForwarding // says how the client connected: kept only when vouched for
	kindOverride   // makes the function route differently from the policy
)

// classify sorts a header name in every spelling a server or framework
// could read as the same name (headername's normalisation: case, '-', '_',
// '.' and other punctuation ignored), so X.Forwarded.For, XRealIp or
// X-Forwarded-For- are what they look like to a function.
func classify(name string) int {
	var buf [32]byte
	b := buf[:0]
	for i := 0; i < len(name); i++ {
		if c := headername.Byte(name[i]); c != 0 {
			if len(b) == cap(b) {
				return kindOther // longer than every name below
			}
			b = append(b, c)
		}
	}
	switch string(b) {
	case "forwarded", "xforwardedfor", "xforwarded", "forwardedfor", "xoriginalforwardedfor", "xrealip",
		"xclientip", "trueclientip", "cfconnectingip", "fastlyclientip", "xclusterclientip":
		return kindClientAddr
	case "xforwardedhost", "xforwardedproto", "xforwardedport", "xforwardedprefix", "xforwardedserver",
		"xforwardedscheme", "xforwardedssl", "xforwardeduri", "xforwardedmethod", "xrequestid",
		"frontendhttps", "xurlscheme":
		return kindForwarding
	case "xoriginalurl", "xrewriteurl", "xhttpmethodoverride", "xhttpmethod", "xmethodoverride":
		return kindOverride
	}
	return kindOther
}

// SetForwarded rebuilds the forwarding headers of pr.Out for the client
// found by ClientIP and the id from RequestID. Call it from
// ReverseProxy.Rewrite, which runs after hop-by-hop headers (and any header
// a client named in Connection) were removed, so what it sets survives.
//
//   - X-Forwarded-For: from a trusted peer, the client, the trusted hops and
//     the peer (anything left of the client is dropped); otherwise just the
//     client.
//   - Forwarded (RFC 7239) and X-Real-Ip: from a trusted peer, rebuilt from
//     that same chain (the client's element carries host and proto);
//     otherwise removed. Every other client-address header (True-Client-Ip,
//     X-Client-Ip, Cf-Connecting-Ip, ...) is removed always: the function
//     never sees an address the gateway did not verify.
//   - X-Forwarded-Host and X-Forwarded-Proto: those a vouching peer sent
//     (see vouched), else the request's Host and the connection's scheme.
//   - X-Forwarded-Port, -Prefix and the other connection headers: kept when
//     the peer vouches for them; spellings with '_' (which CGI-style servers
//     read as '-') are removed always.
//   - X-Request-Id: requestID.
//   - Path and method overrides (X-Original-Url, X-Rewrite-Url,
//     X-Http-Method-Override, ...) are removed always: the policy decided on
//     the request's own path and method.
func (t *Trust) SetForwarded(pr *httputil.ProxyRequest, client netip.Addr, requestID string) {
	in, out := pr.In, pr.Out.Header
	peer := Peer(in)
	trusted := len(t.prefixes) > 0 && t.trusted(peer)
	vouched := trusted && t.vouched(in.Header, peer)
	scrub(out, vouched)
	host, proto := forwardedHost(in, vouched), forwardedProto(in, vouched)
	// One backing array for the values set here; each slice is capped so an
	// append elsewhere cannot overwrite its neighbour.
	vals := make([]string, 6)
	set := func(i int, name, v string) {
		vals[i] = v
		out[name] = vals[i : i+1 : i+1]
	}
	if trusted {
		hops := t.hops(in.Header, peer)
		set(0, "X-Forwarded-For", joinHops(hops))
		set(4, "Forwarded", forwardedElements(hops, host, proto))
		set(5, "X-Real-Ip", hops[0].String())
	} else if client.IsValid() {
		set(0, "X-Forwarded-For", client.String())
	}
	if host != "" {
		set(1, "X-Forwarded-Host", host)
	}
	set(2, "X-Forwarded-Proto", proto)
	set(3, "X-Request-Id", requestID)
}

// scrub removes the forwarding headers the gateway does not pass on.
func scrub(h http.Header, vouched bool) {
	for k := range h {
		switch classify(k) {
		case kindOverride, kindClientAddr:
			delete(h, k)
		case kindForwarding:
			if !vouched || strings.IndexByte(k, '_') >= 0 {
				delete(h, k)
			}
		}
	}
}

// hops returns the chain a trusted peer's request continues with, client
// first: the client, the trusted hops after it, then the peer. A malformed
// chain is just the peer (ClientIP then reports the peer too).
func (t *Trust) hops(h http.Header, peer netip.Addr) []netip.Addr {
	var arr [8]netip.Addr
	rev := arr[:0]
	if _, _, ok := t.walkCollect(h, &rev); !ok {
		rev = rev[:0]
	}
	out := make([]netip.Addr, 0, len(rev)+1)
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return append(out, peer)
}

// chain renders hops as an X-Forwarded-For value.
func (t *Trust) chain(h http.Header, peer netip.Addr) string { return joinHops(t.hops(h, peer)) }

func joinHops(hops []netip.Addr) string {
	var b strings.Builder
	for i, a := range hops {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// forwardedElements renders hops as a Forwarded header: one for= element per
// hop, the first one with the host and proto the function is told about.
func forwardedElements(hops []netip.Addr, host, proto string) string {
	var b strings.Builder
	for i, a := range hops {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("for=")
		if a.Is6() {
			b.WriteString(forwardedValue("[" + a.String() + "]"))
		} else {
			b.WriteString(a.String())
		}
		if i == 0 {
			if host != "" {
				b.WriteString(";host=" + forwardedValue(host))
			}
			b.WriteString(";proto=" + proto)
		}
	}
	return b.String()
}

// forwardedValue renders v as an RFC 7239 value: a token as it is, anything
// else as a quoted string.
func forwardedValue(v string) string {
	token := v != ""
	for i := 0; i < len(v) && token; i++ {
		c := v[i]
		token = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
	if token {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

func forwardedHost(in *http.Request, trusted bool) string {
	if trusted {
		if v := in.Header["X-Forwarded-Host"]; len(v) == 1 && validHost(v[0]) {
			return v[0]
		}
	}
	if validHost(in.Host) {
		return in.Host
	}
	return ""
}

func forwardedProto(in *http.Request, trusted bool) string {
	if trusted {
		if v := in.Header["X-Forwarded-Proto"]; len(v) == 1 {
			switch strings.ToLower(strings.TrimSpace(v[0])) {
			case "https":
				return "https"
			case "http":
				return "http"
			}
		}
	}
	if in.TLS != nil {
		return "https"
	}
	return "http"
}

// validHost accepts a host[:port] made of the characters host names and IP
// literals use.
func validHost(s string) bool {
	if s == "" || len(s) > 261 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
			return false
		}
	}
	return true
}
