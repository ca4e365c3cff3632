package authgate.authz_test

import data.authgate.authz

req(method, granted) := {
	"request": {"method": method},
	"identity": {"kind": "jwt", "subject": "svc", "scopes": granted},
}

test_get_with_read_allowed if {
	authz.decision.allow with input as req("GET", ["orders:read"])
}

test_post_with_read_denied if {
	d := authz.decision with input as req("POST", ["orders:read"])
	d.allow == false
	d.reason == "missing_scope:orders:write"
}

test_delete_needs_delete if {
	authz.decision.allow with input as req("DELETE", ["orders:delete"])
	not authz.decision.allow with input as req("DELETE", ["orders:write"])
}

test_unknown_method_denied if {
	d := authz.decision with input as req("TRACE", ["orders:read", "orders:write", "orders:delete"])
	d.allow == false
	d.reason == "method_not_allowed"
}

test_anonymous_denied if {
	d := authz.decision with input as {"request": {"method": "GET"}}
	d.allow == false
}
