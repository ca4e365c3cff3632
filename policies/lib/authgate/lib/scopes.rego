# Scope helpers over input.identity.scopes (the scopes authgate verified).
# Every helper is false when the request carries no identity.
package authgate.lib.scopes

# has(s) holds when scope s was granted.
has(s) if s in input.identity.scopes

# has_all(ss) holds when every scope in ss (array or set) was granted. An
# empty ss holds only for an authenticated request.
has_all(ss) if {
	is_array(input.identity.scopes)
	every s in ss {
		s in input.identity.scopes
	}
}

# has_any(ss) holds when at least one scope in ss was granted.
has_any(ss) if {
	some s in ss
	s in input.identity.scopes
}
