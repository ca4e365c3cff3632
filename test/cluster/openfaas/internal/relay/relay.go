// Package relay is a reproduction of the header plumbing shared by
// openfaas/of-watchdog@9bdadb1e8c68ae1016ac1a35906cd2acaa53169a,
// openfaas/faas-provider@f53fe6362ce959e032b8c063318ca5e38c0cbed8 and
// openfaas/faas@8d803bf9e2655aec6a60fd0e25b392839f96af95: the header copy they
// each define (copyHeaders), the test for requests they hand to the standard
// library's reverse proxy (requiresStdlibProxy: SSE, NDJSON, WebSocket), and
// that reverse proxy configured the way they configure it (a Director that
// only sets the URL, an ErrorHandler that writes nothing, errors not logged).
//
// The originals use the deprecated ReverseProxy.Director; this reproduction
// uses Rewrite and restores by hand what Director would have produced: the
// client's address appended to X-Forwarded-For, and X-Forwarded-Host and
// X-Forwarded-Proto passed on as received.
package relay

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
)

// CopyHeaders copies every value of src into dst, replacing dst's values of
// the same keys.
func CopyHeaders(dst, src http.Header) {
	for k, v := range src {
		dst[k] = append([]string(nil), v...)
	}
}

// Forward fills out, the request relayed for r, the way the gateway and the
// provider both do: r's headers copied, X-Forwarded-Host and X-Forwarded-For
// set only when absent (never appended to), and r's body passed on with
// ContentLength left 0, so it goes on chunked. drop names headers removed
// after the copy.
func Forward(out, r *http.Request, drop ...string) {
	CopyHeaders(out.Header, r.Header)
	for _, h := range drop {
		out.Header.Del(h)
	}
	if r.Host != "" && out.Header.Get("X-Forwarded-Host") == "" {
		out.Header["X-Forwarded-Host"] = []string{r.Host}
	}
	if out.Header.Get("X-Forwarded-For") == "" {
		out.Header["X-Forwarded-For"] = []string{r.RemoteAddr}
	}
	if r.Body != nil {
		out.Body = r.Body
	}
}

// RequiresStdlibProxy reports whether r goes through the standard library's
// reverse proxy instead of an http.Client: Accept naming text/event-stream or
// application/x-ndjson, or Upgrade: websocket.
func RequiresStdlibProxy(r *http.Request) bool {
	accept := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(accept, "text/event-stream") ||
		strings.Contains(accept, "application/x-ndjson") ||
		r.Header.Get("Upgrade") == "websocket"
}

// DirectorProxy returns a reverse proxy that behaves like the originals'
// Director-based one; setURL sets the outbound URL (it receives the
// outbound request).
func DirectorProxy(setURL func(out *http.Request)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			setURL(pr.Out)
			for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok && !hopByHop(pr.In.Header, h) {
					pr.Out.Header[h] = append([]string(nil), v...)
				}
			}
			ip, _, err := net.SplitHostPort(pr.In.RemoteAddr)
			if err != nil {
				return
			}
			prior := pr.In.Header["X-Forwarded-For"]
			if hopByHop(pr.In.Header, "X-Forwarded-For") {
				prior = nil
			}
			if len(prior) > 0 {
				ip = strings.Join(prior, ", ") + ", " + ip
			}
			pr.Out.Header.Set("X-Forwarded-For", ip)
		},
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) {},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
}

// hopByHop reports whether name is listed in h's Connection header.
func hopByHop(h http.Header, name string) bool {
	for _, c := range h["Connection"] {
		for _, tok := range strings.Split(c, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}
