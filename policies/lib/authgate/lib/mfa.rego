# Multi-factor authentication helpers over the token's amr and acr claims.
package authgate.lib.mfa

# default_amr are the amr values authgate treats as multi-factor evidence
# by default (the same list as a route's requireMFA).
default_amr := {"mfa", "otp", "hwk", "swk", "fido"}

# amr is the token's amr claim as an array; a single string is accepted too.
amr := a if {
	a := input.identity.claims.amr
	is_array(a)
}

amr := [a] if {
	a := input.identity.claims.amr
	is_string(a)
}

# amr_any(values) holds when the token's amr contains any of values.
amr_any(values) if {
	some v in amr
	v in values
}

# acr_in(values) holds when the token's acr equals one of values.
acr_in(values) if {
	is_string(input.identity.claims.acr)
	input.identity.claims.acr in values
}

# satisfied holds when amr contains one of default_amr.
satisfied if amr_any(default_amr)

# satisfied_with(amrs, acrs) holds when amr contains one of amrs or acr is one
# of acrs.
satisfied_with(amrs, _) if amr_any(amrs)

satisfied_with(_, acrs) if acr_in(acrs)
