// Package headername is the one normalisation of HTTP header names that
// authgate compares managed names in. Servers and frameworks in front of a
// function do not agree on what a header name is: CGI, WSGI, PHP and Rack
// turn '-' into '_' and upper-case the name, some fold or drop '.', Node
// lower-cases, others strip punctuation to build an identifier. So ASCII
// letters are folded to lower case, ASCII digits are kept and every other
// byte (punctuation, whitespace, non-ASCII) is ignored: X-Authgate-Subject,
// x_authgate_subject and XAuthgateSubject all normalise to
// "xauthgatesubject". Unicode case folding is never applied (the Kelvin sign
// is not K). Nothing here allocates except Normalize.
package headername

// Equivalent reports whether a and b normalise to the same non-empty name:
// whether some server or framework could read one as the other.
func Equivalent(a, b string) bool {
	i, j := Next(a, 0), Next(b, 0)
	if i == len(a) {
		return false
	}
	for i < len(a) && j < len(b) {
		if Byte(a[i]) != Byte(b[j]) {
			return false
		}
		i, j = Next(a, i+1), Next(b, j+1)
	}
	return i == len(a) && j == len(b)
}

// Next returns the index of the first byte of s at or after i that
// survives normalisation, or len(s).
func Next(s string, i int) int {
	for i < len(s) && Byte(s[i]) == 0 {
		i++
	}
	return i
}

// HasPrefix reports whether name, normalised, starts with the
// normalised prefix.
func HasPrefix(name, prefix string) bool {
	j := 0
	for i := 0; i < len(name) && j < len(prefix); i++ {
		c := Byte(name[i])
		if c == 0 {
			continue
		}
		if c != prefix[j] {
			return false
		}
		j++
	}
	return j == len(prefix)
}

// Equal reports whether name, normalised, equals the normalised want.
func Equal(name, want string) bool {
	j := 0
	for i := 0; i < len(name); i++ {
		c := Byte(name[i])
		if c == 0 {
			continue
		}
		if j == len(want) || c != want[j] {
			return false
		}
		j++
	}
	return j == len(want)
}

// normTable is the normalisation of one byte: ASCII letters in lower case,
// digits as themselves, 0 (ignored) for everything else. A constant, so the
// hot path is a lookup rather than branches (TestTable checks it).
const normTable = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x00-0x0f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x10-0x1f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x20-0x2f: space and punctuation
	"0123456789" + "\x00\x00\x00\x00\x00\x00" + // 0x30-0x3f: digits, then : ; < = > ?
	"\x00abcdefghijklmno" + // 0x40-0x4f: @, A-O
	"pqrstuvwxyz" + "\x00\x00\x00\x00\x00" + // 0x50-0x5f: P-Z, then [ \ ] ^ _
	"\x00abcdefghijklmno" + // 0x60-0x6f: `, a-o
	"pqrstuvwxyz" + "\x00\x00\x00\x00\x00" + // 0x70-0x7f: p-z, then { | } ~ DEL
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" // 0x80-0xff: non-ASCII

// Byte maps one byte of a name (see normTable).
func Byte(c byte) byte { return normTable[c] }

// Normalize returns name in normalised form.
func Normalize(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		if c := Byte(name[i]); c != 0 {
			b = append(b, c)
		}
	}
	return string(b)
}

// Protected reports names that never carry an identity or a credential and
// that policies can never set: framing, hop-by-hop, credential and
// forwarding headers, in every spelling. Config validation refuses them as
// identity headers and credential sources; injection refuses them from
// Rego.
func Protected(name string) bool {
	switch Normalize(name) {
	case "host", "contentlength", "contenttype", "contentencoding", "transferencoding", "connection",
		"keepalive", "te", "trailer", "upgrade", "proxyauthorization", "proxyconnection", "proxyauthenticate",
		"authorization", "cookie", "forwarded", "xforwardedfor", "xforwardedhost", "xforwardedproto",
		"xrealip", "xrequestid", "expect":
		return true
	}
	return false
}
