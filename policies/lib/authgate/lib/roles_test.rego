package authgate.lib.roles_test

import data.authgate.lib.roles

id_input := {"identity": {"roles": ["editor", "viewer"]}}

test_has if roles.has("editor") with input as id_input

test_has_missing if not roles.has("admin") with input as id_input

test_has_any if roles.has_any({"admin", "viewer"}) with input as id_input

test_has_any_none if not roles.has_any(["admin"]) with input as id_input

test_has_all if roles.has_all(["editor", "viewer"]) with input as id_input

test_has_all_missing if not roles.has_all(["editor", "admin"]) with input as id_input

test_no_identity if {
	not roles.has("editor") with input as {}
	not roles.has_all([]) with input as {}
}
