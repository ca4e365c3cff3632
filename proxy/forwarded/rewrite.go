package forwarded

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// Header kinds for scrubbing.
const (
	kindOther      = iota
	kindForwarding // says who the client is or how it connected
	kindOverride   // makes the function route differently from the policy
)

// classify sorts a header name, in any spelling ('_' for '-', any case).
func classify(name string) int {
	var buf [32]byte
	if len(name) > len(buf) {
		return kindOther
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		b[i] = c
	}
	switch string(b) {
	case "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
		"x-forwarded-prefix", "x-forwarded-server", "x-forwarded-scheme", "x-forwarded-ssl", "x-forwarded-uri",
		"x-forwarded-method", "x-forwarded", "forwarded-for", "x-original-forwarded-for", "x-real-ip",
		"x-client-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip",
		"x-request-id", "front-end-https", "x-url-scheme":
		return kindForwarding
	case "x-original-url", "x-rewrite-url", "x-http-method-override", "x-http-method", "x-method-override":
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
//   - X-Forwarded-Host: the request's Host, unless a trusted peer sent one.
//   - X-Forwarded-Proto: http or https from the connection, unless a
//     trusted peer sent one of those.
//   - X-Request-Id: requestID.
//   - Forwarded, X-Real-Ip and the other client-address headers
//     (True-Client-Ip, X-Client-Ip, ...) are removed unless the peer is
//     trusted; spellings with '_' (X_Real_IP, which CGI-style servers read
//     as X-Real-IP) are removed always.
//   - Path and method overrides (X-Original-Url, X-Rewrite-Url,
//     X-Http-Method-Override, ...) are removed always: the policy decided on
//     the request's own path and method.
func (t *Trust) SetForwarded(pr *httputil.ProxyRequest, client netip.Addr, requestID string) {
	in, out := pr.In, pr.Out.Header
	peer := Peer(in)
	trusted := len(t.prefixes) > 0 && t.trusted(peer)
	for k := range out {
		switch classify(k) {
		case kindOverride:
			delete(out, k)
		case kindForwarding:
			if !trusted || strings.IndexByte(k, '_') >= 0 {
				delete(out, k)
			}
		}
	}
	// One backing array for the values set here; each slice is capped so an
	// append elsewhere cannot overwrite its neighbour.
	vals := make([]string, 4)
	set := func(i int, name, v string) {
		vals[i] = v
		out[name] = vals[i : i+1 : i+1]
	}
	if trusted {
		if v := in.Header["Forwarded"]; len(v) > 0 {
			out["Forwarded"] = v // ReverseProxy removed it before Rewrite
		}
		set(0, "X-Forwarded-For", t.chain(in.Header, peer))
	} else if client.IsValid() {
		set(0, "X-Forwarded-For", client.String())
	}
	if host := forwardedHost(in, trusted); host != "" {
		set(1, "X-Forwarded-Host", host)
	}
	set(2, "X-Forwarded-Proto", forwardedProto(in, trusted))
	set(3, "X-Request-Id", requestID)
}

// chain renders the X-Forwarded-For a trusted peer's request continues
// with: the client, the trusted hops after it, then the peer.
func (t *Trust) chain(h http.Header, peer netip.Addr) string {
	var arr [8]netip.Addr
	hops := arr[:0]
	if _, _, ok := t.walkCollect(h, &hops); !ok {
		hops = hops[:0]
	}
	var b strings.Builder
	for i := len(hops) - 1; i >= 0; i-- {
		b.WriteString(hops[i].String())
		b.WriteString(", ")
	}
	b.WriteString(peer.String())
	return b.String()
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
