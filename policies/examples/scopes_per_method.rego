# Scopes per method: reads need "orders:read", writes "orders:write",
# deletes "orders:delete". Other methods are denied.
#
# Query: data.authgate.authz.decision
package authgate.authz

import data.authgate.lib.scopes

required_scope := {
	"GET": "orders:read",
	"HEAD": "orders:read",
	"POST": "orders:write",
	"PUT": "orders:write",
	"PATCH": "orders:write",
	"DELETE": "orders:delete",
}

default decision := {"allow": false, "reason": "method_not_allowed"}

decision := {"allow": true} if {
	scopes.has(required_scope[input.request.method])
}

decision := {"allow": false, "reason": concat("", ["missing_scope:", s])} if {
	s := required_scope[input.request.method]
	not scopes.has(s)
}
