package authgate.lib.path_test

import data.authgate.lib.path

req(segments, claims) := {
	"request": {"segments": segments},
	"identity": {"claims": claims},
}

test_equal if path.claim_equals_segment("department", 1) with input as req(["departments", "eng"], {"department": "eng"})

test_not_equal if not path.claim_equals_segment("department", 1) with input as req(["departments", "ops"], {"department": "eng"})

test_nested_claim if path.claim_equals_segment("org.dept", 1) with input as req(["departments", "eng"], {"org": {"dept": "eng"}})

test_dotted_claim_name if {
	path.claim_equals_segment("https://example.com/dept", 1) with input as req(["departments", "eng"], {"https://example.com/dept": "eng"})
}

test_list_claim if path.claim_equals_segment("departments", 1) with input as req(["departments", "eng"], {"departments": ["ops", "eng"]})

test_list_claim_no_match if not path.claim_equals_segment("departments", 1) with input as req(["departments", "eng"], {"departments": ["ops"]})

test_missing_segment if not path.claim_equals_segment("department", 3) with input as req(["departments", "eng"], {"department": "eng"})

test_missing_claim if not path.claim_equals_segment("department", 1) with input as req(["departments", "eng"], {})

test_number_claim_not_compared if not path.claim_equals_segment("n", 0) with input as req(["1"], {"n": 1})

test_no_identity if not path.claim_equals_segment("department", 1) with input as {"request": {"segments": ["departments", "eng"]}}

test_kubernetes_io_claim if {
	path.claim_equals_segment("kubernetes.io.namespace", 1) with input as req(["namespaces", "team-a"], {"kubernetes.io": {"namespace": "team-a"}})
}
