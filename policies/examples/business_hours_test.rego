package authgate.authz_test

import data.authgate.authz

at(ns) := {"request": {"method": "GET"}, "time": {"unix_ns": ns}}

# 2024-01-03T09:00:00Z = Wednesday 10:00 in Berlin.
test_weekday_morning_allowed if {
	authz.decision.allow with input as at(1704272400000000000)
}

# 2024-01-03T17:30:00Z = Wednesday 18:30 in Berlin.
test_weekday_evening_denied if {
	d := authz.decision with input as at(1704303000000000000)
	d.allow == false
	d.reason == "outside_business_hours"
}

# 2024-01-06T09:00:00Z = Saturday 10:00 in Berlin.
test_weekend_denied if {
	d := authz.decision with input as at(1704531600000000000)
	d.allow == false
}

# 2024-01-03T06:30:00Z = Wednesday 07:30 in Berlin; 08:30 would be UTC+2.
test_uses_berlin_time if {
	d := authz.decision with input as at(1704263400000000000)
	d.allow == false
}
