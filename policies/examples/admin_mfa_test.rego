package authgate.authz_test

import data.authgate.authz

req(path_segments, roles, amr) := {
	"request": {"method": "POST", "segments": path_segments},
	"identity": {"kind": "jwt", "subject": "alice", "roles": roles, "claims": {"amr": amr}},
}

test_admin_with_mfa_allowed if {
	d := authz.decision with input as req(["admin", "users"], ["admin"], ["pwd", "otp"])
	d.allow == true
	d.headers["X-Authgate-Admin"] == "true"
}

test_admin_without_mfa_denied if {
	d := authz.decision with input as req(["admin", "users"], ["admin"], ["pwd"])
	d.allow == false
	d.reason == "mfa_required"
}

test_non_admin_denied if {
	d := authz.decision with input as req(["admin"], ["viewer"], ["otp"])
	d.allow == false
	d.reason == "admin_role_required"
}

test_other_path_allowed if {
	d := authz.decision with input as req(["reports"], [], ["pwd"])
	d.allow == true
}

test_anonymous_denied if {
	d := authz.decision with input as {"request": {"method": "GET", "segments": ["reports"]}}
	d.allow == false
	d.reason == "unauthenticated"
}
