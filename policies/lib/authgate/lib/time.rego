# Time helpers over input.time.unix_ns, the instant authgate received the
# request. They never read the clock themselves (time.now_ns is refused), so
# a decision can be reproduced from its input.
#
# Import with an alias, because "time" would shadow OPA's time.* built-ins:
#
#	import data.authgate.lib.time as libtime
package authgate.lib.time

# business_hours(tz, start_hour, end_hour, weekdays) holds when the request
# time, in the IANA time zone tz (e.g. "Europe/Berlin", "UTC"), falls on one
# of weekdays ("Monday" .. "Sunday", array or set) and start_hour <= hour <
# end_hour (0..24). An unknown tz is an evaluation error, which denies.
business_hours(tz, start_hour, end_hour, weekdays) if {
	ns := input.time.unix_ns
	[hour, _, _] := time.clock([ns, tz])
	start_hour <= hour
	hour < end_hour
	time.weekday([ns, tz]) in weekdays
}

# weekdays is Monday to Friday.
weekdays := {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
