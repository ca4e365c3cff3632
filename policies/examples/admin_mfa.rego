# Admin routes need MFA: anything under /admin requires the "admin" role and
# multi-factor evidence in the token (amr), other paths only an
# authenticated caller.
#
# Query: data.authgate.authz.decision
package authgate.authz

import data.authgate.lib.mfa
import data.authgate.lib.roles

is_admin_path if input.request.segments[0] == "admin"

default decision := {"allow": false, "reason": "unauthenticated"}

decision := {"allow": true} if {
	not is_admin_path
	input.identity.subject
}

decision := {"allow": false, "reason": "admin_role_required"} if {
	is_admin_path
	not roles.has("admin")
}

decision := {"allow": false, "reason": "mfa_required"} if {
	is_admin_path
	roles.has("admin")
	not mfa.satisfied
}

decision := {"allow": true, "headers": {"X-Authgate-Admin": "true"}} if {
	is_admin_path
	roles.has("admin")
	mfa.satisfied
}
