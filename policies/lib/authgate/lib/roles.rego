# Role helpers over input.identity.roles (from the issuer's rolesClaim).
# Every helper is false when the request carries no identity.
package authgate.lib.roles

# has(r) holds when role r is held.
has(r) if r in input.identity.roles

# has_any(rs) holds when at least one role in rs (array or set) is held.
has_any(rs) if {
	some r in rs
	r in input.identity.roles
}

# has_all(rs) holds when every role in rs is held. An empty rs holds only for
# an authenticated request.
has_all(rs) if {
	is_array(input.identity.roles)
	every r in rs {
		r in input.identity.roles
	}
}
