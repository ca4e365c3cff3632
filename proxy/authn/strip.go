package authn

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

// strip removes c's source from r: the header, every copy of the cookie
// (keeping the other cookies), or every copy of the query parameter from
// URL.RawQuery and RequestURI.
func strip(r *http.Request, c Credential) {
	switch c.Source.Type {
	case config.SourceBearer:
		r.Header.Del("Authorization")
	case config.SourceHeader:
		r.Header.Del(c.Source.Name)
	case config.SourceCookie:
		stripCookie(r.Header, c.Source.Name)
	case config.SourceQuery:
		stripQuery(r, c.Source.Name)
	}
}

func stripCookie(h http.Header, name string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := make([]string, 0, len(lines))
	for _, line := range lines {
		var b strings.Builder
		for rest := line; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			p := trimOWS(part)
			k, _, _ := strings.Cut(p, "=")
			if p == "" || trimOWS(k) == name {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
}

func stripQuery(r *http.Request, name string) {
	if r.URL == nil {
		return
	}
	q := removeQueryParam(r.URL.RawQuery, name)
	r.URL.RawQuery = q
	r.URL.ForceQuery = false
	if r.RequestURI != "" {
		if path, _, ok := strings.Cut(r.RequestURI, "?"); ok {
			if q != "" {
				path += "?" + q
			}
			r.RequestURI = path
		}
	}
}

// removeQueryParam drops every pair named name; kept pairs keep the
// separator that preceded them.
func removeQueryParam(raw, name string) string {
	var b strings.Builder
	sep := byte(0)
	for rest := raw; rest != ""; {
		var part string
		i := strings.IndexAny(rest, "&;")
		next := byte(0)
		if i >= 0 {
			part, next, rest = rest[:i], rest[i], rest[i+1:]
		} else {
			part, rest = rest, ""
		}
		k, _, _ := strings.Cut(part, "=")
		if part != "" && !queryNameIs(k, name) {
			if b.Len() > 0 {
				if sep == 0 {
					sep = '&'
				}
				b.WriteByte(sep)
			}
			b.WriteString(part)
		}
		sep = next
	}
	return b.String()
}
