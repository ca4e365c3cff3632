# Helpers relating the request path to the caller's claims.
package authgate.lib.path

# claim(claim_path) is the verified claim at a dotted path ("org.dept"). A
# claim whose own name contains dots ("https://example.com/dept") is found
# first, as in route requireClaims.
claim(claim_path) := v if {
	v := input.identity.claims[claim_path]
} else := v if {
	v := object.get(input.identity.claims, split(claim_path, "."), null)
	v != null
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
