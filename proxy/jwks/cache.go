package jwks

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxDeltaSeconds caps delta-seconds values (RFC 9111, section 1.2.2).
const maxDeltaSeconds = 1 << 31

// lifetime is how long a response said it may be cached.
type lifetime struct {
	maxAge time.Duration
	known  bool // the response declared a lifetime; maxAge may be zero
}

// freshness reads a response's freshness lifetime after RFC 9111: no-store
// or no-cache mean zero; else the first Cache-Control max-age (an invalid
// one means zero); else Expires minus Date (now when Date is absent or
// invalid; an invalid Expires means zero). A valid Age header is
// subtracted. Nothing declared is the zero lifetime with known false.
// Header values are remote input: they are parsed, never logged.
func freshness(h http.Header, now time.Time) lifetime {
	life, ok := cacheControlMaxAge(h.Values("Cache-Control"))
	if !ok {
		life, ok = expiresLifetime(h, now)
	}
	if !ok {
		return lifetime{}
	}
	if age, err := deltaSeconds(h.Get("Age")); err == nil {
		life -= age
	}
	return lifetime{maxAge: max(life, 0), known: true}
}

// cacheControlMaxAge reads the lifetime from Cache-Control directives.
func cacheControlMaxAge(values []string) (time.Duration, bool) {
	var (
		maxAge time.Duration
		found  bool
	)
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true // the most restrictive directive wins
			case "max-age":
				if found {
					continue // the first occurrence is used
				}
				found = true
				if n, err := deltaSeconds(strings.Trim(strings.TrimSpace(arg), `"`)); err == nil {
					maxAge = n
				}
			}
		}
	}
	return maxAge, found
}

// expiresLifetime reads the lifetime from Expires and Date.
func expiresLifetime(h http.Header, now time.Time) (time.Duration, bool) {
	raw := h.Get("Expires")
	if raw == "" {
		return 0, false
	}
	exp, err := http.ParseTime(raw)
	if err != nil {
		return 0, true // an invalid Expires ("0", "-1") means already expired
	}
	base := now
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		base = date
	}
	return min(max(exp.Sub(base), 0), maxDeltaSeconds*time.Second), true
}

// deltaSeconds parses a non-negative integer number of seconds, capped.
func deltaSeconds(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && s != "" && strings.Trim(s, "0123456789") == "":
		n = maxDeltaSeconds
	case err != nil:
		return 0, fmt.Errorf("delta-seconds: %w", err)
	}
	return time.Duration(min(n, maxDeltaSeconds)) * time.Second, nil
}
