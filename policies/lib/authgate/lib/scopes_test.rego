package authgate.lib.scopes_test

import data.authgate.lib.scopes

id_input := {"identity": {"scopes": ["read", "write"]}}

test_has if scopes.has("read") with input as id_input

test_has_missing if not scopes.has("admin") with input as id_input

test_has_all if scopes.has_all(["read", "write"]) with input as id_input

test_has_all_set if scopes.has_all({"read"}) with input as id_input

test_has_all_one_missing if not scopes.has_all(["read", "admin"]) with input as id_input

test_has_all_empty_needs_identity if {
	scopes.has_all([]) with input as id_input
	not scopes.has_all([]) with input as {"request": {}}
}

test_has_any if scopes.has_any(["admin", "write"]) with input as id_input

test_has_any_none if not scopes.has_any(["admin", "delete"]) with input as id_input

test_no_identity if {
	not scopes.has("read") with input as {"request": {}}
	not scopes.has_any(["read"]) with input as {"request": {}}
}
