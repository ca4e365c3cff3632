# Helpers relating the request path to the caller's claims.
package authgate.lib.path

# claim(claim_path) is the verified claim at a dotted path ("org.dept",
# "kubernetes.io.namespace"). Claim names may contain dots: the path matches
# a chain of keys that, joined with dots, spell it, and where several do the
# one with the longest first key wins, then the longest second key, and so
# on: the rule of route requireClaims and claim headers (proxy/claims
# Lookup; proxy/claims/testdata/lookup.json holds the cases both agree on).
claim(claim_path) := v if {
	# A top-level key is the longest possible first key: no walk needed.
	v := input.identity.claims[claim_path]
} else := best[1] if {
	candidates := {[lengths, v] |
		walk(input.identity.claims, [p, v])
		count(p) > 0
		every k in p {
			is_string(k)
		}
		concat(".", p) == claim_path
		lengths := [count(k) | some k in p]
	}
	best := max(candidates)
}

# claim_equals_segment(claim_path, index) holds when the claim at claim_path
# equals path segment index (0-based: in /departments/eng/reports, segment 1
# is "eng"). A list claim matches when any element equals the segment. Only
# string claims are compared.
claim_equals_segment(claim_path, index) if {
	v := claim(claim_path)
	is_string(v)
	v == input.request.segments[index]
}

claim_equals_segment(claim_path, index) if {
	v := claim(claim_path)
	is_array(v)
	some e in v
	is_string(e)
	e == input.request.segments[index]
}
