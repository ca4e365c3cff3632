// Package claims reads values out of verified JWT claims by dotted path.
package claims

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Lookup follows a dotted path ("org.tier") through nested objects. A key
// that itself contains dots is matched first as a whole, so URL-style claim
// names ("https://example.com/roles") work.
func Lookup(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	cur := any(claims)
	rest := path
	for rest != "" {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok := m[rest]; ok {
			return v, true
		}
		head, tail, _ := strings.Cut(rest, ".")
		v, ok := m[head]
		if !ok {
			return nil, false
		}
		cur, rest = v, tail
	}
	return cur, true
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
