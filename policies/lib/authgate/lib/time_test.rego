package authgate.lib.time_test

import data.authgate.lib.time as libtime

# 2024-01-03T10:00:00Z is a Wednesday.
wed_10_utc := 1704276000000000000

# 2024-01-06T10:00:00Z is a Saturday.
sat_10_utc := 1704535200000000000

at(ns) := {"time": {"unix_ns": ns}}

test_inside if libtime.business_hours("UTC", 9, 17, libtime.weekdays) with input as at(wed_10_utc)

test_before_start if not libtime.business_hours("UTC", 11, 17, libtime.weekdays) with input as at(wed_10_utc)

test_end_is_exclusive if not libtime.business_hours("UTC", 9, 10, libtime.weekdays) with input as at(wed_10_utc)

test_weekend if not libtime.business_hours("UTC", 9, 17, libtime.weekdays) with input as at(sat_10_utc)

test_weekend_listed if libtime.business_hours("UTC", 9, 17, ["Saturday"]) with input as at(sat_10_utc)

# 10:00 UTC is 19:00 in Tokyo: outside 9-17 there.
test_time_zone if not libtime.business_hours("Asia/Tokyo", 9, 17, libtime.weekdays) with input as at(wed_10_utc)

test_time_zone_inside if libtime.business_hours("Asia/Tokyo", 18, 20, libtime.weekdays) with input as at(wed_10_utc)

test_no_time if not libtime.business_hours("UTC", 0, 24, libtime.weekdays) with input as {}
