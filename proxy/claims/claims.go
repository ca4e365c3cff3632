// Package claims reads values out of verified JWT claims by dotted path.
package claims

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Lookup follows a dotted path ("org.tier") through nested objects. Claim
// names may themselves contain dots: URL-style names
// ("https://example.com/roles") and Kubernetes' "kubernetes.io". The path
// matches a chain of keys whose names, joined with dots, spell it; where
// several chains do, the one with the longest first key wins, then the
// longest second key, and so on. So "kubernetes.io.namespace" reads
// claims["kubernetes.io"]["namespace"] and "https://example.com/roles"
// matches as a whole. policies/lib/authgate/lib/path.rego's claim() is the
// same rule in Rego; testdata/lookup.json holds the cases both must agree
// on.
//
// The work is bounded by the size of the claims: an object is reached by
// one chain of keys only, so it is searched at most once.
func Lookup(claims map[string]any, path string) (any, bool) {
	for end := len(path); end > 0; end = strings.LastIndexByte(path[:end], '.') {
		v, ok := claims[path[:end]]
		if !ok {
			continue
		}
		if end == len(path) {
			return v, true
		}
		if sub, isObject := v.(map[string]any); isObject {
			if r, ok := Lookup(sub, path[end+1:]); ok {
				return r, true
			}
		}
	}
	return nil, false
}

// Strings flattens a claim value into strings: a string is itself, a list
// yields each scalar element, numbers and booleans are formatted. Objects and
// nulls yield nothing.
func Strings(v any) []string {
	switch t := v.(type) {
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := Scalar(e); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return t
	default:
		if s, ok := Scalar(v); ok {
			return []string{s}
		}
		return nil
	}
}

// Scalar formats a scalar claim value.
func Scalar(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(t, 10), true
	case int:
		return strconv.Itoa(t), true
	}
	return "", false
}

// SpaceList reads a scope-style value: a space-separated string or a list.
func SpaceList(v any) []string {
	if s, ok := v.(string); ok {
		return strings.Fields(s)
	}
	return Strings(v)
}

// NumericDate reads the JWT NumericDate claim name of m (RFC 7519: seconds
// since the epoch, possibly fractional; claims are decoded with
// json.Number): present says whether the claim is there at all, ok whether
// it is a usable date (a number, finite, not negative, before year ~36800).
func NumericDate(m map[string]any, name string) (t time.Time, present, ok bool) {
	v, present := m[name]
	if !present {
		return time.Time{}, false, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, true, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}
