package authgate.authz_test

import data.authgate.authz

req(path_segments, claims) := {
	"request": {"method": "GET", "segments": path_segments},
	"identity": {"kind": "jwt", "subject": "alice", "claims": claims},
}

test_own_department_allowed if {
	d := authz.decision with input as req(["departments", "eng", "reports"], {"department": "eng"})
	d.allow == true
	d.headers["X-Authgate-Department"] == "eng"
}

test_list_claim_allowed if {
	d := authz.decision with input as req(["departments", "ops"], {"department": ["eng", "ops"]})
	d.allow == true
}

test_other_department_denied if {
	d := authz.decision with input as req(["departments", "finance", "payroll"], {"department": "eng"})
	d.allow == false
	d.reason == "department_mismatch"
}

test_missing_claim_denied if {
	d := authz.decision with input as req(["departments", "eng"], {})
	d.allow == false
}

test_other_path_denied if {
	d := authz.decision with input as req(["teams", "eng"], {"department": "eng"})
	d.allow == false
	d.reason == "not_a_department_path"
}

test_department_index_only if {
	# The department must be segment 1, not merely appear in the path.
	d := authz.decision with input as req(["departments", "x", "eng"], {"department": "eng"})
	d.allow == false
}
