package authgate.lib.ip_test

import data.authgate.lib.ip

from(addr) := {"request": {"client_ip": addr}}

test_in_range_v4 if ip.in_ranges(["10.0.0.0/8", "192.168.1.0/24"]) with input as from("192.168.1.7")

test_out_of_range_v4 if not ip.in_ranges(["10.0.0.0/8"]) with input as from("11.0.0.1")

test_in_range_v6 if ip.in_ranges({"2001:db8::/32"}) with input as from("2001:db8::1")

test_single_address if ip.in_ranges(["203.0.113.9"]) with input as from("203.0.113.9")

test_empty_list if not ip.in_ranges([]) with input as from("10.0.0.1")

test_no_client_ip if not ip.in_ranges(["0.0.0.0/0"]) with input as {"request": {}}

test_single_address_v6 if ip.in_ranges(["2001:db8::9"]) with input as from("2001:db8::9")

test_single_address_other if not ip.in_ranges(["203.0.113.9"]) with input as from("203.0.113.10")
