// Package forwarded decides who the client is, which request id to use and
// which X-Forwarded-* headers the function receives, trusting forwarding
// headers only from configured proxies (none by default).
package forwarded

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/authgate/authgate/proxy/config"
)

// maxRequestIDLen bounds a reused X-Request-Id.
const maxRequestIDLen = 128

// Trust holds the trusted proxies and the request id generator. It is safe
// for concurrent use.
type Trust struct {
	prefixes []netip.Prefix
	idPrefix string
	counter  atomic.Uint64
}

// NewTrust parses trusted proxy addresses or CIDRs. An empty list trusts
// nobody: every forwarding header a client sends is replaced.
func NewTrust(entries []string) (*Trust, error) {
	t := &Trust{}
	for i, e := range entries {
		p, err := config.ParseTrustedProxy(e)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %d (%q): %w", i, e, err)
		}
		t.prefixes = append(t.prefixes, p)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	t.idPrefix = hex.EncodeToString(b[:])
	return t, nil
}

// trusted reports whether a is a trusted proxy.
func (t *Trust) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Peer returns the address of the connection's other end, or the zero Addr
// when r.RemoteAddr is not an IP (a Unix socket).
func Peer(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// ClientIP returns the client's address. It is the peer unless the peer is
// a trusted proxy; then X-Forwarded-For is walked from the right, skipping
// trusted hops, and the first untrusted hop (or the leftmost) is the client.
// A malformed chain yields the peer.
func (t *Trust) ClientIP(r *http.Request) netip.Addr {
	peer := Peer(r)
	if len(t.prefixes) == 0 || !t.trusted(peer) {
		return peer
	}
	client, _, ok := t.walkCollect(r.Header, nil)
	if !ok {
		return peer
	}
	return client
}

// walkCollect finds the client in h's X-Forwarded-For chain, right to left.
// It returns the client and the number of hops from the client to the right
// end (inclusive), or ok == false when the chain is absent or malformed.
// When collect is not nil the hops are appended to it, right to left.
func (t *Trust) walkCollect(h http.Header, collect *[]netip.Addr) (client netip.Addr, hops int, ok bool) {
	vals := forwardedFor(h)
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			var elem string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				elem, v = v[j+1:], v[:j]
			} else {
				elem, v = v, ""
			}
			a, ok := parseHop(elem)
			if !ok {
				return netip.Addr{}, 0, false
			}
			client, hops = a, hops+1
			if collect != nil {
				*collect = append(*collect, a)
			}
			if !t.trusted(a) {
				return client, hops, true
			}
		}
	}
	return client, hops, hops > 0
}

// forwardedFor returns the X-Forwarded-For values, or nil when the sender
// declared the header hop-by-hop in Connection (it was not meant for us).
func forwardedFor(h http.Header) []string {
	vals := h["X-Forwarded-For"]
	if len(vals) == 0 {
		return nil
	}
	for _, c := range h["Connection"] {
		for c != "" {
			var tok string
			tok, c, _ = strings.Cut(c, ",")
			if strings.EqualFold(strings.TrimSpace(tok), "X-Forwarded-For") {
				return nil
			}
		}
	}
	return vals
}

// parseHop parses one X-Forwarded-For element: an IP, optionally with a
// port ("1.2.3.4:80", "[::1]:80") or brackets ("[::1]").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// vouched reports whether the forwarding headers a trusted peer passed on
// (X-Forwarded-Proto, -Host, X-Request-Id, ...) may be believed. A peer at
// 127.0.0.1 or ::1 is another container of the pod forwarding to localhost,
// such as Knative's queue-proxy: it appends its own peer to X-Forwarded-For
// but passes the other headers on as it received them, so they are only as
// good as the hop in front of it. They are believed when that hop (the
// rightmost X-Forwarded-For element) is trusted too, or when there is none
// (the request started in the pod). Any other trusted peer is believed.
func (t *Trust) vouched(h http.Header, peer netip.Addr) bool {
	if len(t.prefixes) == 0 || !t.trusted(peer) {
		return false
	}
	if peer != netip.AddrFrom4([4]byte{127, 0, 0, 1}) && peer != netip.IPv6Loopback() {
		return true
	}
	vals := forwardedFor(h)
	if len(vals) == 0 {
		return true
	}
	last := vals[len(vals)-1]
	if j := strings.LastIndexByte(last, ','); j >= 0 {
		last = last[j+1:]
	}
	a, ok := parseHop(last)
	return ok && t.trusted(a)
}

// RequestID returns the request's id: the X-Request-Id a trusted proxy
// vouches for (see vouched) when it is a single value of 1 to 128
// characters from [A-Za-z0-9._-], otherwise a new process-unique id.
func (t *Trust) RequestID(r *http.Request) string {
	if len(t.prefixes) > 0 {
		if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) && t.vouched(r.Header, Peer(r)) {
			return v[0]
		}
	}
	return t.NewRequestID()
}

// NewRequestID returns a new id: a random per-process prefix and a counter.
func (t *Trust) NewRequestID() string {
	var b [48]byte
	out := append(b[:0], t.idPrefix...)
	out = append(out, '-')
	out = strconv.AppendUint(out, t.counter.Add(1), 36)
	return string(out)
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
