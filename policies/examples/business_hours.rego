# Business hours: requests are allowed Monday to Friday, 08:00 to 18:00
# Berlin time. The time comes from input.time (when authgate received the
# request), never from the clock inside the policy.
#
# Query: data.authgate.authz.decision
package authgate.authz

import data.authgate.lib.time as libtime

default decision := {"allow": false, "reason": "outside_business_hours"}

decision := {"allow": true} if {
	libtime.business_hours("Europe/Berlin", 8, 18, libtime.weekdays)
}
