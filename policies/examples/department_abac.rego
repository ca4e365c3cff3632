# Department ABAC: a caller may use /departments/{dept}/... only for the
# department named in its verified "department" claim (a string, or a list
# of departments). Everything else under this policy is denied.
#
# Query: data.authgate.authz.decision
package authgate.authz

import data.authgate.lib.path

default allow := false

allow if {
	input.request.segments[0] == "departments"
	path.claim_equals_segment("department", 1)
}

reason := "department_mismatch" if {
	input.request.segments[0] == "departments"
	not allow
} else := "not_a_department_path" if not allow

# The function learns which department was authorised.
decision := {"allow": true, "headers": {"X-Authgate-Department": input.request.segments[1]}} if allow

decision := {"allow": false, "reason": reason} if not allow
