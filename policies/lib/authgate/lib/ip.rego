# Client address helpers over input.request.client_ip (the peer address, or
# the forwarded client when the peer is a trusted proxy).
package authgate.lib.ip

# in_ranges(cidrs) holds when the client IP lies in one of cidrs (array or
# set of CIDRs or single addresses, IPv4 or IPv6). A malformed entry or
# client IP is an evaluation error, which denies.
in_ranges(cidrs) if {
	some c in cidrs
	net.cidr_contains(as_cidr(c), input.request.client_ip)
}

# as_cidr(c) turns a single address into a one-address CIDR.
as_cidr(c) := c if contains(c, "/")

as_cidr(c) := concat("", [c, "/128"]) if {
	not contains(c, "/")
	contains(c, ":")
}

as_cidr(c) := concat("", [c, "/32"]) if {
	not contains(c, "/")
	not contains(c, ":")
}
