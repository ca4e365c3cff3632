package config

import (
	"net/textproto"
	"slices"
	"strings"

	"github.com/authgate/authgate/proxy/headername"
)

// sourceKey identifies what a credential source reads, the way the proxy's
// authenticator does: a header by its canonical name, a cookie or query
// parameter by its exact name.
type sourceKey struct{ typ, name string }

func keyOf(s CredentialSource) sourceKey {
	if s.Type == SourceHeader {
		return sourceKey{s.Type, textproto.CanonicalMIMEHeaderKey(s.Name)}
	}
	return sourceKey{s.Type, s.Name}
}

// validateSourcePrefixes refuses two sources of one policy that read the
// same header, cookie or query parameter with different prefixes: the
// proxy reads each source once for everything a workload's policies
// accept, so such a policy could not be built for any workload it selects.
// The sources of a policy are those of the issuers it names (in the order
// of issuers) and then its API-key sources (apiKeys.sources when it names
// none). Policies that never select the same workload may read a header
// differently; the controller checks every two that may.
func (c *ProxyConfig) validateSourcePrefixes(errs *ErrorList) {
	reported := map[string]bool{}
	for i := range c.Policies {
		pol := &c.Policies[i]
		prefixes := map[sourceKey]string{}
		check := func(p Path, sources []CredentialSource) {
			for j, s := range sources {
				k := keyOf(s)
				prev, seen := prefixes[k]
				if !seen {
					prefixes[k] = s.Prefix
					continue
				}
				sp := p.index(j)
				if strings.EqualFold(prev, s.Prefix) || reported[sp.String()] {
					continue
				}
				reported[sp.String()] = true
				errs.add(sp, "%s %q is also read by another credential source of this policy, with prefix %q; one %s must be read with one prefix", s.Type, s.Name, prev, s.Type)
			}
		}
		for k := range c.Issuers {
			if slices.Contains(pol.Authentication.Issuers, c.Issuers[k].Name) {
				check(Path{}.child("issuers").index(k).child("sources"), c.Issuers[k].Sources)
			}
		}
		switch ak := pol.Authentication.APIKeys; {
		case ak == nil:
		case len(ak.Sources) > 0:
			check(Path{}.child("policies").index(i).child("authentication", "apiKeys", "sources"), ak.Sources)
		default:
			check(Path{}.child("apiKeys", "sources"), c.APIKeys.Sources)
		}
	}
}

// validateHeaderCollisions refuses an identity header that some server
// could read as a credential header: the gateway strips identity headers
// in every spelling before it reads the credential, so such a config could
// never authenticate anyone.
func (c *ProxyConfig) validateHeaderCollisions(errs *ErrorList) {
	var creds []string
	add := func(srcs []CredentialSource) {
		for _, s := range srcs {
			if s.Type == SourceHeader {
				creds = append(creds, s.Name)
			}
		}
	}
	for i := range c.Issuers {
		add(c.Issuers[i].Sources)
	}
	add(c.APIKeys.Sources)
	for i := range c.Policies {
		if ak := c.Policies[i].Authentication.APIKeys; ak != nil {
			add(ak.Sources)
		}
	}
	for i := range c.Policies {
		hp := Path{}.child("policies").index(i).child("headers")
		for _, n := range c.Policies[i].Headers.names() {
			for _, cred := range creds {
				if headername.Equivalent(n.name, cred) {
					errs.add(hp.join(n.field), "%q is read as the credential header %q by some servers; identity headers are stripped in every spelling, so no credential could be read", n.name, cred)
					break
				}
			}
		}
	}
}

type namedHeader struct {
	field Path // below the policy's headers
	name  string
}

// names lists the configured identity header names with their fields.
func (h *IdentityHeaders) names() []namedHeader {
	field := func(name string) Path { return Path{}.child(name) }
	out := []namedHeader{{field("subject"), h.Subject}, {field("issuer"), h.Issuer}, {field("kind"), h.Kind}, {field("scopes"), h.Scopes}, {field("claimsJSON"), h.ClaimsJSON}}
	for j, ch := range h.Claims {
		out = append(out, namedHeader{field("claims").index(j).child("header"), ch.Header})
	}
	return slices.DeleteFunc(out, func(n namedHeader) bool { return n.name == "" })
}
