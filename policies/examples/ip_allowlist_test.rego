package authgate.authz_test

import data.authgate.authz

from(addr) := {"request": {"method": "GET", "client_ip": addr}}

test_office_allowed if authz.decision with input as from("10.20.3.4")

test_vpn_v6_allowed if authz.decision with input as from("2001:db8:100::42")

test_internet_denied if {
	authz.decision == false with input as from("203.0.113.7")
}

test_neighbour_range_denied if {
	authz.decision == false with input as from("10.21.0.1")
}
