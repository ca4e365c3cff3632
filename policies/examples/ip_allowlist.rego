# IP allow-list: only callers from the office network or the VPN may pass.
# This example answers with a bare boolean, the simplest result shape.
#
# Query: data.authgate.authz.decision
package authgate.authz

import data.authgate.lib.ip

allowed_ranges := ["10.20.0.0/16", "192.168.100.0/24", "2001:db8:100::/48"]

default decision := false

decision if ip.in_ranges(allowed_ranges)
