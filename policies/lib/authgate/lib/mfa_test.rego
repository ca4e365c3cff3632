package authgate.lib.mfa_test

import data.authgate.lib.mfa

with_claims(c) := {"identity": {"claims": c}}

test_satisfied_amr_list if mfa.satisfied with input as with_claims({"amr": ["pwd", "otp"]})

test_satisfied_amr_string if mfa.satisfied with input as with_claims({"amr": "hwk"})

test_password_only_denied if not mfa.satisfied with input as with_claims({"amr": ["pwd"]})

test_no_amr_denied if not mfa.satisfied with input as with_claims({"sub": "alice"})

test_no_identity_denied if not mfa.satisfied with input as {}

test_satisfied_with_acr if {
	mfa.satisfied_with([], ["urn:mace:incommon:iap:silver"]) with input as with_claims({"acr": "urn:mace:incommon:iap:silver"})
}

test_satisfied_with_wrong_acr if {
	not mfa.satisfied_with(["otp"], ["gold"]) with input as with_claims({"acr": "bronze", "amr": ["pwd"]})
}

test_satisfied_with_custom_amr if {
	mfa.satisfied_with(["face"], []) with input as with_claims({"amr": ["face"]})
	not mfa.satisfied with input as with_claims({"amr": ["face"]})
}

test_acr_not_string if not mfa.acr_in([1]) with input as with_claims({"acr": 1})
